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
    job_id: Annotated[str, typer.Argument(
        metavar="JOB", help="The id of a stopped job (or the name of a run with one such job).")],
    host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint, e.g. ssh://me@gpu-box.")]
    = None,
) -> int:
    """Restart a stopped job with its previously saved outputs in place."""
    from dtrun.cli.lifecycle import session
    from dtrun.ui import say

    result = session(host).resume(job_id)
    say(f"run {result.run.name}: {result.run.state.value}")
    return result.exit_code
