"""`provider: python`: runs `file` with `args` in the requested Python (seed 002)."""

from __future__ import annotations

from dtrun.providers.base import JobShape, ProviderContext, python_image
from dtrun.providers.bash import shell_command
from dtrun.spec.models import Workflow


class PythonProvider:
    name = "python"

    def shape(self, workflow: Workflow, ctx: ProviderContext) -> JobShape:
        from dtrun.errors import SpecError

        if not workflow.file:
            raise SpecError(f"workflow '{workflow.name}' (provider python) has no `file`",
                            hint="add `file: train.py` (the script to run, relative to the project folder)")
        run = ["python", workflow.file, *workflow.args]
        # Setup `commands` run first in the same shell, then the script replaces it (exec).
        command = [*shell_command([*workflow.commands, 'exec "$@"']), "python", *run] \
            if workflow.commands else run
        return JobShape(image=python_image(self.name, workflow, ctx), command=command, ports=workflow.ports)
