"""`dtrun stop [-a] RUN|JOB`: stop (outputs saved) or abort (not saved) from any terminal.

The request is written to the store (the process running the job sees it when the container exits),
then the container gets SIGTERM with a grace period, or SIGKILL for an abort. If no process runs the
job any more, this command finishes it itself (reconcile). It returns once the jobs are settled.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dtrun.cli.app import app


@app.command()
def stop(
    target: Annotated[str, typer.Argument(metavar="RUN|JOB", help="A run name or a job id.")],
    abort: Annotated[bool, typer.Option("--abort", "-a", help="Abort: do not save the outputs.")] = False,
    host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint, e.g. ssh://me@gpu-box.")]
    = None,
) -> None:
    """Stop a run or a job gracefully (outputs saved), or abort it with -a (outputs not saved)."""
    from dtrun.backends.base import LABEL
    from dtrun.cli.lifecycle import Repo
    from dtrun.engine import control
    from dtrun.engine.runner import STOP_GRACE, store_label, wait_finished
    from dtrun.errors import DtrunError
    from dtrun.ui import say

    repo = Repo.here(host)
    repo.reconcile()
    _, jobs = repo.find(target)
    live = [j for j in jobs if not j.state.finished]
    if not live:
        states = ", ".join(f"{j.workflow} {j.state.value}" for j in jobs)
        raise DtrunError(f"nothing to stop: {target} has finished ({states})",
                         hint="`dtrun status` shows what is still running")
    action = control.ABORT if abort else control.STOP
    for job in live:
        control.request(repo.store, job.id, action)
    say(f"{'aborting' if abort else 'stopping'} {', '.join(f'{j.workflow} ({j.id})' for j in live)}")
    backend = repo.backend()
    containers = {c.labels.get(f"{LABEL}.job"): c for c in backend.find({f"{LABEL}.store": store_label(repo.store)})}
    for job in live:
        container = containers.get(job.id)
        if container is None:
            continue
        if abort:
            backend.kill(container)
        else:
            backend.stop(container, STOP_GRACE)
    repo.reconcile()
    settled = wait_finished(repo.store, [j.id for j in live], timeout=STOP_GRACE + 120)
    for job in settled:
        say(f"{job.workflow} ({job.id}): {job.state.value}" + (f" ({job.message})" if job.message else ""))
