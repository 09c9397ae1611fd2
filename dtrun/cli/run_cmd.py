"""`dtrun run WORKFLOW [--variable VALUE ...] [ARGS ...]`: plan, build, run and save, streaming the
job's output as it happens.

The arguments after the workflow are the workflow's own: `--NAME VALUE` for a variable it declares,
`--help` for the list of its variables, anything else for `${{ run.args }}` (after `--`, everything
is). `dtrun run --help` lists the workflows that can be run.

With `-d` the run is recorded, handed to the same engine in a background process (its own session,
so closing the terminal does not stop it; its output goes to a log file in the data folder), and the
command returns at once with the run's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from dtrun.cli.app import app
from dtrun.cli.version_cmd import _choose_backend

if TYPE_CHECKING:
    import subprocess

    from dtrun.spec import Spec
    from dtrun.spec.variables import Variable
    from dtrun.store import Store


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
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Tag the run with TAG when it succeeds.",
                                            metavar="TAG")] = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Return at once; the run goes on in the "
                                         "background (see `dtrun status`, `dtrun logs`).")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every job even if an identical one ran "
                                           "before.")] = False,
    attached_run: Annotated[str | None, typer.Option("--attached-run", hidden=True)] = None,
    gpus: Annotated[int | None, typer.Option("--gpus", help="GPUs for the workflow, overriding its "
                                             "`resources.gpu` count (0: none).")] = None,
    publish_all: Annotated[bool, typer.Option("--publish-all", help="Publish the job's ports on all of the "
                                              "host's interfaces, not only 127.0.0.1 (anyone who reaches "
                                              "the host reaches them).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="At the end, print the run's summary as JSON on stdout "
                                          "(job output then goes to stderr; docs/json.md).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show image builds' whole logs as they come "
                                          "(a terminal otherwise shows a compact view).")] = False,
    backend: Annotated[str | None, typer.Option("--backend", metavar="NAME", callback=_choose_backend,
                                                help="Run on this backend instead of the configured one "
                                                "(docker, slurm, kubernetes), as `dtrun --backend NAME run`.")]
    = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the objects the backend would create "
                                          "(Kubernetes), secret values masked; run nothing.")] = False,
    output: Annotated[str | None, typer.Option("--output", "-o", help="With --dry-run: yaml (default) or json.",
                                               metavar="FORMAT")] = None,
) -> int:
    """Run a workflow (and the workflows it depends on) as containers.

    After the workflow's name: --NAME VALUE sets one of its variables, --help lists them, and any other
    argument is passed on as ${{ run.args }} (everything after -- is, even if it looks like an option).
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
    if output is not None and not dry_run:
        raise DtrunError(f"-o {output} formats what --dry-run prints", hint="dtrun run WF --dry-run -o yaml")
    if output not in (None, "yaml", "json"):
        raise DtrunError(f"-o {output}: expected yaml or json", hint="dtrun run WF --dry-run -o yaml")
    if dry_run and (detach or tag or attached_run or as_json):
        raise DtrunError("--dry-run runs nothing: it takes no --detach, --tag or --json", hint="drop one of them")
    if as_json and detach:
        raise DtrunError("--json prints the run's summary at its end, so it does not go with --detach",
                         hint="dtrun run WORKFLOW -d, then `dtrun status --json`")
    return _run(ctx, workflow, host, tag, detach, no_cache, attached_run, gpus, publish_all, as_json, verbose,
                backend, output or "yaml" if dry_run else None)


def _run(ctx: typer.Context, workflow: str, host: str | None, tag: str | None, detach: bool, no_cache: bool,
         attached_run: str | None, gpus: int | None, publish_all: bool, as_json: bool = False,
         verbose: bool = False, backend: str | None = None, dry_run: str | None = None) -> int:
    from dtrun.cli.lifecycle import session
    from dtrun.spec.arguments import parse_run_arguments, variables_help
    from dtrun.spec.models import DEV_ENVIRONMENTS
    from dtrun.ui import escape, say, warn

    current = session(host, json_stdout=as_json, verbose=verbose)
    # issue 12: an invalid workflow elsewhere does not block this one; one warning line per such file.
    spec = current.spec(strict=False)
    target = spec.get(workflow)
    for warning in spec.warnings_for(workflow):
        warn(escape(str(warning)))
    declared = _declared(spec, workflow)
    parsed = parse_run_arguments(list(ctx.args), declared, verbatim=int(ctx.meta.get("dtrun.verbatim", 0)))
    if parsed.help:
        typer.echo(variables_help(workflow, target.help, declared))
        return 0
    if dry_run is not None:
        from dtrun.engine.dryrun import render

        typer.echo(render(current.dry_run(workflow, variables=parsed.variables, args=parsed.args, gpus=gpus),
                            dry_run), nl=False)
        return 0
    if detach:
        record = current.submit(workflow, variables=parsed.variables, args=parsed.args, tag=tag, gpus=gpus,
                                publish_all=publish_all)
        child = _spawn(record.name, workflow, host, no_cache, gpus, parsed.variables, parsed.args, current.store,
                       publish_all=publish_all, backend=backend)
        say(f"run {record.name} goes on in the background: `dtrun status`, `dtrun logs {record.name} -f`, "
            f"`dtrun stop {record.name}`")
        if target.provider in DEV_ENVIRONMENTS:  # its URL, once the background process sees the app answer
            say(f"waiting for {target.provider} to answer (Ctrl+C stops waiting; the run goes on)")
            lines = current.wait_app_urls(record.name, lambda: child.poll() is None)
            for line in lines:
                say(escape(line))
            if not lines:
                say(f"no URL yet: `dtrun status` shows it once {target.provider} answers "
                    f"(`dtrun logs {record.name}` says what it does)")
        typer.echo(record.name)
        return 0
    try:
        result = current.run(workflow, variables=parsed.variables, args=parsed.args, tag=tag, no_cache=no_cache,
                             gpus=gpus, submitted=attached_run, publish_all=publish_all)
    finally:
        close = getattr(current.listener, "close", None)  # the renderer's live view, if one is up
        if close is not None:
            close()
    say(f"run {result.run.name}: {result.run.state.value}")
    if as_json:
        from dtrun.cli import json_out

        json_out.emit(json_out.run_summary(result.run, result.jobs))
    return result.exit_code


def _declared(spec: Spec, workflow: str) -> dict[str, Variable]:
    """The variables a run of `workflow` accepts: its own, then those of the workflows it runs first."""
    from dtrun.spec.graph import runtime_order

    out: dict[str, Variable] = {}
    for name in reversed(runtime_order(workflow, spec.workflows.__getitem__, set(spec.workflows))):
        for key, variable in spec.declared.get(name, {}).items():
            out.setdefault(key, variable)
    return out


def _run_help(ctx: typer.Context) -> str:
    """The command's help followed by the workflows of the project here (seed 003)."""
    from dtrun.errors import DtrunError

    text = ctx.get_help()
    try:
        from dtrun.api import Session

        spec = Session().spec(strict=False)  # issue 12: broken files do not hide the others
    except DtrunError as exc:
        return f"{text}\n\nworkflows: none here ({exc.message})"
    width = max(len(n) for n in spec.workflows) + 2
    lines = [f"  {name:<{width}}  {_first_line(w.help) or f'run {name} workflow'}"
             for name, w in spec.workflows.items()]
    return f"{text}\n\nworkflows:\n" + "\n".join(lines)


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


def _spawn(name: str, workflow: str, host: str | None, no_cache: bool, gpus: int | None,
           variables: dict[str, str], args: list[str], store: Store, *,
           publish_all: bool = False, backend: str | None = None) -> subprocess.Popen[bytes]:
    """The background process: this command again, attached to the recorded run. Variables go as
    `--NAME=VALUE` and the run's arguments after `--`, so the child parses them exactly as given."""
    import os
    import subprocess
    import sys

    from dtrun.config import data_home
    from dtrun.engine import control

    command = [sys.executable, "-m", "dtrun", "run", workflow, "--attached-run", name]
    if host:
        command += ["--host", host]
    if backend:
        command += ["--backend", backend]
    if no_cache:
        command.append("--no-cache")
    if gpus is not None:
        command += ["--gpus", str(gpus)]
    if publish_all:
        command.append("--publish-all")
    command += [*(f"--{key}={value}" for key, value in variables.items()), "--", *args]
    folder = data_home() / "detached"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.log", "ab") as log:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 start_new_session=True, cwd=os.getcwd(), env={**os.environ, "NO_COLOR": "1"})
    control.claim(store, name, pid=child.pid)
    return child
