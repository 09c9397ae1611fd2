"""What `dtrun flow serve` does with each triggered run: run it, say how it ended, keep count.

A server runs unattended for days, so one run must never take it down: a `DtrunError` (the user's
flow, the store, Docker) is one line saying why; anything else is a bug in dtrun, said with the file
and line where it was raised, its traceback appended to a log file (named in that line) for the
report, and counted. After every run the server says its counts (`served N runs: ... succeeded,
... failed, ... internal errors`), so an operator sees at a glance whether errors are piling up.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from dtrun.errors import DtrunError
from dtrun.structs import struct

#: Runs one flow (its file, why it was triggered) and returns (run name, whether it succeeded).
Start = Callable[[Path, str], tuple[str, bool]]


@struct
class Counts:
    succeeded: int = 0
    failed: int = 0
    #: Unexpected errors (bugs in dtrun); each is counted as a failed run too.
    internal: int = 0

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed

    def line(self) -> str:
        return (f"served {self.finished} run{'s' if self.finished != 1 else ''}: {self.succeeded} succeeded, "
                f"{self.failed} failed, {self.internal} internal error{'s' if self.internal != 1 else ''}")


class TriggeredRuns:
    """Runs triggered flows one call at a time (from several threads) and keeps the counts."""

    def __init__(self, start: Start, say: Callable[[str], None], error_log: Path) -> None:
        self.start, self.say, self.error_log = start, say, error_log
        self.counts = Counts()
        self._lock = threading.Lock()

    def execute(self, name: str, path: Path, why: str) -> bool:
        """Run the flow `name` (file `path`) for `why`; True if it succeeded. Never raises an Exception."""
        ok, internal = False, False
        try:
            self.say(f"trigger: {why} -> flow {name}")
            run, ok = self.start(path, why)
            self.say(f"flow {name}: run {run} {'succeeded' if ok else 'failed'}")
        except DtrunError as exc:
            self.say(f"failed: flow {name} ({why}): {exc}")
        except Exception as exc:  # a bug in dtrun: said, with where it happened, logged, and the server goes on
            internal = True
            self.say(self._internal(name, why, exc))
        with self._lock:
            if ok:
                self.counts.succeeded += 1
            else:
                self.counts.failed += 1
            self.counts.internal += internal
            line = self.counts.line()
        self.say(line)
        return ok

    def _internal(self, name: str, why: str, exc: Exception) -> str:
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f"at {where.filename}:{where.lineno}; " if where else ""
        logged = ""
        try:
            self.error_log.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.error_log.open("a") as log:
                log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S %Z')} flow {name} ({why})\n")
                log.write("".join(traceback.format_exception(exc)))
            logged = f"traceback in {self.error_log}; "
        except OSError as err:
            logged = f"the traceback could not be written to {self.error_log}: {err.strerror or err}; "
        return (f"failed: flow {name} ({why}): internal error {type(exc).__name__}: {exc} "
                f"({at}{logged}please report it)")
