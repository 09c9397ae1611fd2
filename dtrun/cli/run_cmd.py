"""`dtrun run WORKFLOW [--variable VALUE ...] [ARGS ...]`: plan, build, run and save, streaming the
job's output as it happens.

The arguments after the workflow are the workflow's own: `--NAME VALUE` for a variable it declares,
`--help` for the list of its variables, anything else for `${{ run.args }}`. `dtrun run --help` lists
the workflows that can be run.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from dtrun.cli.app import app


class RunCommand(TyperCommand):
    """Remembers how many arguments came after `--` (click drops the `--` itself): they are run
    arguments even when they look like `--help` or a variable."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["dtrun.verbatim"] = len(args) - args.index("--") - 1 if "--" in args else 0
        return super().parse_args(ctx, args)


@app.command(cls=RunCommand, add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    workflow: Annotated[str | None, typer.Argument(help="The workflow to run (see `dtrun list`).", metavar="WORKFLOW",
                                                   show_default=False)] = None,
    host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint, e.g. ssh://me@gpu-box.")]
    = None,
) -> int:
    """Run a workflow (and the workflows it depends on) as containers.

    After the workflow's name: --NAME VALUE sets one of its variables, --help lists them, and any other
    argument is passed on as ${{ run.args }}.
    """
    from dtrun.errors import DtrunError

    if workflow is None or workflow in ("--help", "-h"):
        typer.echo(_run_help(ctx))
        if workflow is None:
            raise DtrunError("missing the workflow to run", hint="dtrun run WORKFLOW (see the list above)")
        return 0
    if workflow.startswith("-"):
        raise DtrunError(f"expected the workflow's name before '{workflow}'",
                         hint="dtrun run WORKFLOW [--VARIABLE VALUE ...] [ARGS ...]")
    return _run(ctx, workflow, host)


def _run(ctx: typer.Context, workflow: str, host: str | None) -> int:
    from rich.markup import escape

    from dtrun.cli.context import Context
    from dtrun.engine import Engine, Hooks
    from dtrun.engine.runner import write_output
    from dtrun.names import new_run_name
    from dtrun.plan import build_plan
    from dtrun.spec.arguments import parse_run_arguments, variables_help
    from dtrun.ui import console, say

    context = Context.here(host=host)
    spec = context.spec()
    target = spec.get(workflow)
    declared = _declared(spec, workflow)
    parsed = parse_run_arguments(list(ctx.args), declared, verbatim=int(ctx.meta.get("dtrun.verbatim", 0)))
    if parsed.help:
        typer.echo(variables_help(workflow, target.help, declared))
        return 0
    snapshot = context.snapshot()
    store = context.store(snapshot.repo_id)
    name = new_run_name(store.run_names())
    plan = build_plan(spec, workflow, variables=parsed.variables, run_args=parsed.args, run_name=name,
                      python_install=context.settings.python_install or "auto")
    backend = context.backend()
    hooks = Hooks(status=say, job_output=write_output,
                  build_line=lambda line: console().print(f"[dim]  | {escape(line)}[/dim]"))
    result = Engine(context.settings, store, backend, snapshot, hooks).run(
        plan, variables=parsed.variables, args=parsed.args, name=name)
    say(f"run {result.run.name}: {result.run.state.value}")
    return result.exit_code


def _declared(spec: Any, workflow: str) -> dict[str, Any]:
    """The variables a run of `workflow` accepts: its own, then those of the workflows it runs first."""
    from dtrun.spec.graph import runtime_order

    out: dict[str, Any] = {}
    for name in reversed(runtime_order(workflow, spec.workflows.__getitem__, set(spec.workflows))):
        for key, variable in spec.declared.get(name, {}).items():
            out.setdefault(key, variable)
    return out


def _run_help(ctx: typer.Context) -> str:
    """The command's help followed by the workflows of the project here (seed 003)."""
    from dtrun.errors import DtrunError

    text = ctx.get_help()
    try:
        from dtrun.cli.context import Context

        spec = Context.here().spec()
    except DtrunError as exc:
        return f"{text}\n\nworkflows: none here ({exc.message})"
    width = max(len(n) for n in spec.workflows) + 2
    lines = [f"  {name:<{width}}  {_first_line(w.help) or f'run {name} workflow'}"
             for name, w in spec.workflows.items()]
    return f"{text}\n\nworkflows:\n" + "\n".join(lines)


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]
