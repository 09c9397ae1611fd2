"""`provider: code`: a VS Code dev environment in the browser (code-server), preinstalled in the image.

code-server (from the npm registry, with a Node from the registry's `node-linux-<arch>` package; see
images/layers/tools.j2) is part of the generated image, so the environment starts in seconds. It
listens on the port dtrun publishes for the app (see `devenv`), opens the project folder and asks for a
password: the per-job token, which the engine passes as `PASSWORD` (code-server's own variable). The
token is masked in stored logs and shown in full only to the user who started the job.
"""

from __future__ import annotations

from dtrun.providers import devenv
from dtrun.providers.base import JobShape, ProviderContext, python_image, with_setup
from dtrun.providers.jupyter import setup_commands, tool
from dtrun.spec.models import Workflow


class CodeProvider:
    name = "code"

    def shape(self, workflow: Workflow, ctx: ProviderContext) -> JobShape:
        # the password comes as PASSWORD, set by the engine when the job starts (never in the plan)
        argv = ["code-server", f"--bind-addr=0.0.0.0:{devenv.app_port(workflow.ports)}", "--auth=password",
                "--disable-telemetry", "--disable-update-check", "/workspace"]
        return JobShape(image=python_image(self.name, workflow, ctx, tools=(tool("code-server", workflow),)),
                        command=with_setup(setup_commands(workflow), argv),
                        ports=workflow.ports + 1, env=devenv.app_env(self.name, workflow.ports))
