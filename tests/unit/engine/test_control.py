from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dtrun.engine import control
from dtrun.store import Store


def test_owner_alive_follows_the_process(tmp_path: Path) -> None:
    store = Store(str(tmp_path), "repo")
    assert control.owner_alive(store, "r1") is False  # nobody claimed it
    control.claim(store, "r1")
    assert control.owner_alive(store, "r1") is True
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        control.claim(store, "r2", pid=child.pid)
        assert control.owner_alive(store, "r2") is True
    finally:
        child.kill()
        child.wait()
    assert control.owner_alive(store, "r2") is False


def test_a_reused_pid_is_not_the_owner(tmp_path: Path) -> None:
    store = Store(str(tmp_path), "repo")
    control.claim(store, "r1", pid=os.getppid())
    path = store.repo_path("owners", "r1.json")
    data = json.loads(store.read_bytes(path))
    if data["started"] is None:
        return  # no /proc here: the start time cannot be checked
    store.write_json(path, {**data, "started": "1"})
    assert control.owner_alive(store, "r1") is False


def test_requests_and_active_markers(tmp_path: Path) -> None:
    store = Store(str(tmp_path), "repo")
    assert control.requested(store, "j") is None
    control.request(store, "j", control.STOP)
    assert control.requested(store, "j") == control.STOP
    control.request(store, "j", control.ABORT)
    control.request(store, "j", control.STOP)  # an abort is not weakened back to a stop
    assert control.requested(store, "j") == control.ABORT
    control.clear(store, "j")
    assert control.requested(store, "j") is None
    control.mark_active(store, "run-1")
    control.mark_active(store, "run-2")
    control.mark_finished(store, "run-1")
    assert control.active_runs(store) == ["run-2"]
