"""`provider: bash`: the workflow's commands, in order, in one shell that stops at the first failure."""

from __future__ import annotations

from dtrun.providers.base import JobShape, ProviderContext, python_image
from dtrun.spec.models import Workflow


def shell_command(commands: list[str]) -> list[str]:
    """One bash process for all commands, so `cd` and exported variables carry from one to the next."""
    return ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "\n".join(commands)]


class BashProvider:
    name = "bash"

    def shape(self, workflow: Workflow, ctx: ProviderContext) -> JobShape:
        from dtrun.errors import SpecError

        if not workflow.commands:
            raise SpecError(f"workflow '{workflow.name}' (provider bash) has no commands",
                            hint="add `commands:` with the shell commands to run")
        return JobShape(image=python_image(self.name, workflow, ctx), command=shell_command(workflow.commands),
                        ports=workflow.ports)
