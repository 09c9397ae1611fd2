"""`dtrun logs RUN|JOB [-f] [-s SINCE]`: a job's output, from the store once it finished, from Docker
while it runs; masked either way. Plain lines (no colours, no timestamps) so it pipes well.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from dtrun.cli.app import app


@app.command()
def logs(
    target: Annotated[str, typer.Argument(metavar="RUN|JOB", help="A run name or a job id.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")] = False,
    since: Annotated[str | None, typer.Option(
        "--since", "-s", help="Only lines from this time on: ISO 8601 (2024-05-01T12:00:00Z) or relative "
        "(30s, 5m, 2h).")] = None,
    host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint, e.g. ssh://me@gpu-box.")]
    = None,
) -> None:
    """Show the output of a run's jobs or of one job."""
    from dtrun.cli.lifecycle import session
    from dtrun.engine.logs import parse_since

    start = parse_since(since) if since else None
    for chunk in session(host).logs(target, since=start, follow=follow):
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
