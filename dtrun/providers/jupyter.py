"""`provider: lab` and `provider: notebook`: a Jupyter dev environment, preinstalled in the image.

JupyterLab (or Notebook 7) is part of the generated image, in a layer of its own, so a dev
environment starts in seconds rather than installing Jupyter at every start. The server listens on the
port dtrun publishes for the app (see `devenv`), on all interfaces of the container (the backend decides
which of the host's interfaces reach it), serves the project folder and asks for the per-job token that
the engine passes as `JUPYTER_TOKEN`. `setup:` then `commands` run first, in one bash that then execs
the server (`with_setup`), after the prelude every provider gets (artifact folders, `before_run`).
"""

from __future__ import annotations

from dtrun.providers import devenv
from dtrun.providers.base import JobShape, ProviderContext, python_image, with_setup
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
        # the token comes as JUPYTER_TOKEN, set by the engine when the job starts (never in the plan);
        # allow_remote_access: with --publish-all the Host header is the host's name; the token guards it.
        argv = ["jupyter", self.app, "--ip=0.0.0.0", f"--port={devenv.app_port(workflow.ports)}", "--no-browser",
                "--allow-root", "--ServerApp.root_dir=/workspace", "--ServerApp.allow_remote_access=True"]
        return JobShape(image=python_image(self.name, workflow, ctx, tools=(tool(self.tool, workflow),)),
                        command=with_setup(setup_commands(workflow), argv),
                        ports=workflow.ports + 1, env=devenv.app_env(self.name, workflow.ports))


class LabProvider(_Jupyter):
    name = "lab"
    tool = "jupyterlab"
    app = "lab"


class NotebookProvider(_Jupyter):
    name = "notebook"
    tool = "notebook"
    app = "notebook"
