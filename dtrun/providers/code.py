"""`provider: code`: a VS Code dev environment in the browser (code-server), preinstalled in the image.

code-server's standalone release (it bundles its own Node) is part of the generated image, so the
environment starts in seconds. It listens on all interfaces of the container on `PORT`, opens the
project folder and asks for the password in `PASSWORD`, which dtrun generates per job and prints with
the job's output (code-server prints where it listens).
"""

from __future__ import annotations

import secrets

from dtrun.providers.base import JobShape, ProviderContext, python_image, with_setup
from dtrun.spec.models import Workflow

PORT = 8080


class CodeProvider:
    name = "code"

    def shape(self, workflow: Workflow, ctx: ProviderContext) -> JobShape:
        argv = ["code-server", f"--bind-addr=0.0.0.0:{PORT}", "--auth=password", "--disable-telemetry",
                "/workspace"]
        password = workflow.env.get("PASSWORD") or secrets.token_urlsafe(12)
        setup = [*workflow.commands, 'echo "code-server password: $PASSWORD"']
        return JobShape(image=python_image(self.name, workflow, ctx, tools=("code-server",)),
                        command=with_setup(setup, argv), ports=max(workflow.ports, 1),
                        env={"PASSWORD": password, "DTRUN_APP_PORT": str(PORT)})
