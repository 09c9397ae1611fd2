"""`dtrun attach RUN|JOB`: be with a running run again: its ports reachable from here, its output.

For a detached run, or one started from another terminal or client: the run's ports are brought to
this machine again (on an ssh:// host, through ssh forwards to 127.0.0.1 here, held while this command
runs), their URLs and the dev environments' printed, then the run's output follows until it ends.
Ctrl+C leaves the run running (stop it with `dtrun stop`).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from dtrun.cli.app import app


@app.command()
def attach(
    target: Annotated[str, typer.Argument(metavar="RUN|JOB", help="A run name or a job id.")],
    host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint, e.g. ssh://me@gpu-box.")]
    = None,
) -> None:
    """Forward a running run's ports here again, print their URLs and follow its output."""
    from dtrun.cli.lifecycle import session
    from dtrun.ui import say

    current = session(host)
    _, close = current.attach(target)
    say(f"attached to {target}: Ctrl+C detaches (the run goes on; `dtrun stop {target}` stops it)")
    try:
        for chunk in current.logs(target, follow=True):
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
    except KeyboardInterrupt:
        say(f"detached from {target}; it goes on")
    finally:
        close()
