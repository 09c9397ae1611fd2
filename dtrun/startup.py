"""Where the `dtrun` command's process starts (the console script and `python -m dtrun`).

The garbage collector is paused while the command starts. Importing typer, rich and the engine
and loading the workflows allocate hundreds of thousands of objects that live as long as the process
(modules, classes, functions, schemas); the collector, triggered by allocation counts, walks them again
and again and frees almost nothing: 30-45 ms of CPU in a 0.5 s `dtrun run`, a full collection among it.

A command done within `RESUME_AFTER_S` (a cache hit, `status`, a short job) never collects: its process
ends and the memory goes with it. One that keeps running (a job followed for hours, `logs -f`, a dev
environment) resumes collecting then: what start-up left behind is collected once, the survivors are
frozen (`gc.freeze`: never scanned again) and the collector runs as usual from there.

Only the command's own process does this; `dtrun.cli.main` and the Python API leave the collector of the
program that calls them alone.
"""

from __future__ import annotations

import gc
import threading
from typing import NoReturn

#: how long a command may run before the collector is back
RESUME_AFTER_S = 1.0


def entry() -> NoReturn:
    """The `dtrun` console script."""
    pause_collector()
    from dtrun.cli import entry as command

    command()


def pause_collector(seconds: float = RESUME_AFTER_S) -> None:
    """Disable the collector now and resume it after `seconds` (on a daemon timer thread). Nothing
    happens where the collector is off already: someone else chose."""
    if not gc.isenabled():
        return
    gc.disable()
    timer = threading.Timer(seconds, resume_collector)
    timer.daemon = True
    timer.name = "dtrun-gc"
    timer.start()


def resume_collector() -> None:
    """Collect start-up's garbage once, freeze what survived, and let the collector run again."""
    gc.collect()
    gc.freeze()
    gc.enable()
