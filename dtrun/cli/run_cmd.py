"""`dtrun run WORKFLOW`: plan, build, run and save, streaming the job's output as it happens.

With `-d` the run is recorded, handed to the same engine in a background process (its own session,
so closing the terminal does not stop it; its output goes to a log file in the data folder), and the
command returns at once with the run's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dtrun.cli.app import app

if TYPE_CHECKING:
    from dtrun.store import Store


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="The workflow to run (see `dtrun list`).")],
    host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint, e.g. ssh://me@gpu-box.")]
    = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Return at once; the run goes on in the "
                                         "background (see `dtrun status`, `dtrun logs`).")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every job even if an identical one ran "
                                           "before.")] = False,
    attached_run: Annotated[str | None, typer.Option("--attached-run", hidden=True)] = None,
    gpus: Annotated[int | None, typer.Option("--gpus", help="GPUs for the workflow, overriding its "
                                             "`resources.gpu` count (0: none).")] = None,
) -> int:
    """Run a workflow (and the workflows it depends on) as containers."""
    from rich.markup import escape

    from dtrun.cli.context import Context
    from dtrun.engine import Engine, Hooks
    from dtrun.engine.runner import write_output
    from dtrun.plan import build_plan
    from dtrun.secrets import SecretStore
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
    secrets = SecretStore(snapshot.repo_id).values()
    if not attached_run:  # runs of this repository whose client is gone are settled first (cheap if none)
        from dtrun.engine.reconcile import reconcile

        reconcile(store, lambda: backend, lambda: list(secrets.values()), status=say)
    engine = Engine(context.settings, store, backend, snapshot, hooks, secrets=secrets)
    if detach:
        record = engine.submit(plan, args=list(ctx.args))
        _spawn(record.name, workflow, host, no_cache, gpus, list(ctx.args), store)
        say(f"run {record.name} goes on in the background: `dtrun status`, `dtrun logs {record.name} -f`, "
            f"`dtrun stop {record.name}`")
        typer.echo(record.name)
        return 0
    submitted = store.load_run(attached_run) if attached_run else None
    result = engine.run(plan, args=list(ctx.args), no_cache=no_cache, submitted=submitted)
    say(f"run {result.run.name}: {result.run.state.value}")
    return result.exit_code


def _spawn(name: str, workflow: str, host: str | None, no_cache: bool, gpus: int | None, args: list[str],
           store: Store) -> None:
    """The background process: this command again, attached to the recorded run."""
    import os
    import subprocess
    import sys

    from dtrun.config import data_home
    from dtrun.engine import control

    command = [sys.executable, "-m", "dtrun", "run", workflow, "--attached-run", name]
    if host:
        command += ["--host", host]
    if no_cache:
        command.append("--no-cache")
    if gpus is not None:
        command += ["--gpus", str(gpus)]
    folder = data_home() / "detached"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.log", "ab") as log:
        child = subprocess.Popen([*command, *args], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 start_new_session=True, cwd=os.getcwd(), env={**os.environ, "NO_COLOR": "1"})
    control.claim(store, name, pid=child.pid)
