"""What lets any dtrun process manage a run another process started: a few small objects in the store.

    repos/<repo>/active/<run>          exists while the run is unfinished (cheap to list for `status`)
    repos/<repo>/owners/<run>.json     the process running the engine for it (pid, host)
    repos/<repo>/jobs/<job>/control.json  a stop or abort request (`dtrun stop`, Ctrl+C)

A run whose owner process is gone is adopted by the next command that reconciles (engine/reconcile.py).
"""

from __future__ import annotations

import json
import os
import time

from dtrun.store import Store

STOP = "stop"
ABORT = "abort"


def mark_active(store: Store, run: str) -> None:
    store.write_bytes(store.repo_path("active", run), b"")


def mark_finished(store: Store, run: str) -> None:
    store.delete(store.repo_path("active", run))


def active_runs(store: Store) -> list[str]:
    return [n for n in store.listdir(store.repo_path("active")) if ".tmp-" not in n]


def claim(store: Store, run: str, pid: int | None = None) -> None:
    """Record this process (or the background process `pid`) as the one running `run`."""
    import socket

    pid = pid or os.getpid()
    store.write_json(store.repo_path("owners", f"{run}.json"),
                     {"pid": pid, "started": _started(pid), "host": socket.gethostname(), "at": time.time()})


def owner_alive(store: Store, run: str) -> bool:
    """Whether the process running `run` still lives (only decidable on the same machine; elsewhere,
    one that claimed the run in the last day is assumed alive)."""
    try:
        data = json.loads(store.read_bytes(store.repo_path("owners", f"{run}.json")))
    except (FileNotFoundError, ValueError):
        return False
    import socket  # here: `status` with no unfinished run never asks, and need not import it

    if data.get("host") != socket.gethostname():
        return bool(time.time() - float(data.get("at", 0)) < 86400)
    pid = int(data.get("pid", 0))
    if pid <= 0 or pid == os.getpid():
        return pid == os.getpid()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = data.get("started")
    if started is not None and _started(pid) not in (None, started):
        return False  # the pid now belongs to another process
    return not _zombie(pid)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (Linux); None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _started(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def _zombie(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and bool(fields) and fields[0] == "Z"


def request(store: Store, job: str, action: str) -> None:
    """Ask for a job to stop (outputs saved) or abort (not saved); an abort overrides a stop."""
    if action == STOP and requested(store, job) == ABORT:
        return
    store.write_json(store.job_path(job, "control.json"), {"action": action, "at": time.time()})


def requested(store: Store, job: str) -> str | None:
    try:
        return str(json.loads(store.read_bytes(store.job_path(job, "control.json")))["action"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


def clear(store: Store, job: str) -> None:
    store.delete(store.job_path(job, "control.json"))
