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
    from dtrun.cli.lifecycle import session
    from dtrun.ui import say

    for job in session(host).stop(target, abort=abort):
        say(f"{job.workflow} ({job.id}): {job.state.value}" + (f" ({job.message})" if job.message else ""))
