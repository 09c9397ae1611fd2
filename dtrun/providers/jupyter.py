"""`provider: lab` and `provider: notebook`: a Jupyter dev environment, preinstalled in the image.

JupyterLab (or Notebook 7) is part of the generated image, in a layer of its own, so a dev
environment starts in seconds rather than installing Jupyter at every start. The server listens on the
port dtrun publishes for the app (see `devenv`), on all interfaces of the container (Docker decides
which of the host's interfaces reach it), serves the project folder and asks for the per-job token that
the engine passes as `DTRUN_APP_TOKEN`.
"""

from __future__ import annotations

from dtrun.providers import devenv
from dtrun.providers.base import JobShape, ProviderContext, python_image
from dtrun.spec.models import Workflow


def setup_commands(workflow: Workflow) -> list[str]:
    """`setup:` then `commands`: all run before the app starts (artifact folders and `before_run` come
    first, from the prelude every provider's command gets, see `providers.base.with_prelude`)."""
    return [*workflow.setup, *workflow.commands]


def tool(name: str, workflow: Workflow) -> str:
    """The image tool, pinned to the workflow's `version:` (`tool_version`) when it names one."""
    return f"{name}=={workflow.tool_version}" if workflow.tool_version else name


class _Jupyter:
    name: str
    tool: str
    app: str

    def shape(self, workflow: Workflow, ctx: ProviderContext) -> JobShape:
        env = devenv.app_env(self.name, workflow.ports)
        # allow_remote_access: with --publish-all the Host header is the host's name; the token guards it.
        launch = (f"jupyter {self.app} --ip=0.0.0.0 --port={devenv.port_ref(env)} --no-browser --allow-root"
                  f" --ServerApp.root_dir=/workspace --ServerApp.allow_remote_access=True"
                  f" --IdentityProvider.token={devenv.token_ref()}")
        return JobShape(image=python_image(self.name, workflow, ctx, tools=(tool(self.tool, workflow),)),
                        command=devenv.app_command(setup_commands(workflow), launch),
                        ports=workflow.ports + 1, env=env)


class LabProvider(_Jupyter):
    name = "lab"
    tool = "jupyterlab"
    app = "lab"


class NotebookProvider(_Jupyter):
    name = "notebook"
    tool = "notebook"
    app = "notebook"
