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
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Tag the run with TAG when it succeeds.",
                                            metavar="TAG")] = None,
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
    plan = build_plan(spec, workflow, python_install=context.settings.python_install or "auto")
    snapshot = context.snapshot()
    store = context.store(snapshot.repo_id)
    if tag:
        from dtrun.store.tags import check_tag_free

        check_tag_free(store, tag)
    backend = context.backend()
    hooks = Hooks(status=say, job_output=write_output,
                  build_line=lambda line: console().print(f"[dim]  | {escape(line)}[/dim]"))
    result = Engine(context.settings, store, backend, snapshot, hooks).run(plan, args=list(ctx.args), tag=tag)
    say(f"run {result.run.name}: {result.run.state.value}")
    return result.exit_code
