"""`dtrun resume JOB`: run a stopped job again in its run, with the outputs it saved put back, so a
script that checkpoints continues where it stopped (seed 003). Only a job that was explicitly stopped,
and that no other job depends on, can be resumed.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dtrun.cli.app import app


@app.command()
def resume(
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="The id of a stopped job.")],
    host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint, e.g. ssh://me@gpu-box.")]
    = None,
) -> int:
    """Restart a stopped job with its previously saved outputs in place."""
    from rich.markup import escape

    from dtrun.cli.lifecycle import Repo
    from dtrun.engine import Engine, Hooks
    from dtrun.engine.runner import write_output
    from dtrun.errors import DtrunError
    from dtrun.plan import build_plan
    from dtrun.secrets import SecretStore
    from dtrun.store import State
    from dtrun.ui import console, say

    repo = Repo.here(host)
    repo.reconcile()
    run, jobs = repo.find(job_id)
    if run is not None:
        raise DtrunError(f"'{job_id}' is a run; resume takes a job id",
                         hint=f"`dtrun status --last 5` shows the job ids of {job_id}")
    record = jobs[0]
    if record.state != State.STOPPED:
        raise DtrunError(f"job {record.id} ({record.workflow}) is {record.state.value}; only a stopped job can "
                         "be resumed", hint="stop a running job with `dtrun stop JOB` (not -a: an aborted job "
                         "saved no outputs to resume from)")
    run = repo.store.load_run(record.run)
    others = [repo.store.load_job(j) for j in run.jobs if j != record.id]
    dependents = [j for j in others if record.workflow in j.needs]
    if dependents:
        raise DtrunError(f"job {record.id} ({record.workflow}) cannot be resumed: "
                         f"{', '.join(f'{j.workflow} ({j.id})' for j in dependents)} depend"
                         f"{'s' if len(dependents) == 1 else ''} on it",
                         hint=f"run the workflow again instead: dtrun run {run.workflow}")
    context = repo.context
    spec = context.spec()
    spec.get(record.workflow)
    plan = build_plan(spec, record.workflow, variables=run.variables, run_args=run.args, run_name=run.name,
                      python_install=context.settings.python_install or "auto")
    snapshot = context.snapshot()
    hooks = Hooks(status=say, job_output=write_output,
                  build_line=lambda line: console().print(f"[dim]  | {escape(line)}[/dim]"))
    engine = Engine(context.settings, repo.store, repo.backend(), snapshot, hooks,
                    secrets=SecretStore(repo.store.repo).values())
    say(f"resuming {record.workflow} (job {record.id}) of run {run.name}")
    result = engine.resume(plan, run, record)
    say(f"run {result.run.name}: {result.run.state.value}")
    return result.exit_code
