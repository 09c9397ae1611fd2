"""`provider: lab` and `provider: notebook`: a Jupyter dev environment, preinstalled in the image.

JupyterLab (or Notebook 7) is part of the generated image, in a layer of its own, so a dev
environment starts in seconds rather than installing Jupyter at every start. The server listens on all
interfaces of the container on `PORT` and serves the project folder; its log prints the URL with
the access token.
"""

from __future__ import annotations

from dtrun.providers.base import JobShape, ProviderContext, python_image, with_setup
from dtrun.spec.models import Workflow

PORT = 8888


class _Jupyter:
    name: str
    tool: str
    app: str

    def shape(self, workflow: Workflow, ctx: ProviderContext) -> JobShape:
        argv = ["jupyter", self.app, "--ip=0.0.0.0", f"--port={PORT}", "--no-browser", "--allow-root",
                "--ServerApp.root_dir=/workspace"]
        return JobShape(image=python_image(self.name, workflow, ctx, tools=(self.tool,)),
                        command=with_setup(workflow.commands, argv), ports=max(workflow.ports, 1),
                        env={"DTRUN_APP_PORT": str(PORT)})


class LabProvider(_Jupyter):
    name = "lab"
    tool = "jupyterlab"
    app = "lab"


class NotebookProvider(_Jupyter):
    name = "notebook"
    tool = "notebook"
    app = "notebook"
