"""`dtrun run WORKFLOW`: plan, build, run and save, streaming the job's output as it happens."""

from __future__ import annotations

from typing import Annotated

import typer

from dtrun.cli.app import app


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="The workflow to run (see `dtrun list`).")],
    host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint, e.g. ssh://me@gpu-box.")]
    = None,
    gpus: Annotated[int | None, typer.Option("--gpus", help="GPUs for the workflow, overriding its "
                                             "`resources.gpu` count (0: none).")] = None,
) -> int:
    """Run a workflow (and the workflows it depends on) as containers."""
    from rich.markup import escape

    from dtrun.cli.context import Context
    from dtrun.engine import Engine, Hooks
    from dtrun.engine.runner import write_output
    from dtrun.plan import build_plan
    from dtrun.ui import console, say

    context = Context.here(host=host)
    spec = context.spec()
    spec.get(workflow)
    if gpus is not None:
        from dtrun.backends.resources import with_gpus
        from dtrun.errors import DtrunError

        if gpus < 0:
            raise DtrunError(f"--gpus {gpus}: expected a number of GPUs, 0 or more", hint="e.g. --gpus 1")

        spec.workflows[workflow] = with_gpus(spec.workflows[workflow], gpus)
    plan = build_plan(spec, workflow, python_install=context.settings.python_install or "auto")
    snapshot = context.snapshot()
    store = context.store(snapshot.repo_id)
    backend = context.backend()
    hooks = Hooks(status=say, job_output=write_output,
                  build_line=lambda line: console().print(f"[dim]  | {escape(line)}[/dim]"))
    result = Engine(context.settings, store, backend, snapshot, hooks).run(plan, args=list(ctx.args))
    say(f"run {result.run.name}: {result.run.state.value}")
    return result.exit_code
