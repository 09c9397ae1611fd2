"""`dtrun attach` right after `dtrun run -d`: a job whose container is not running yet gets its ports
forwarded and said once it runs; closing stops the watch and the forwards (engine/addresses.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from dtrun.backends.base import PublishedPort
from dtrun.engine.addresses import attach
from dtrun.store import JobRecord, State, Store
from tests.unit.engine.test_exposure import wait_for


class Host:
    """The part of a backend attach uses: one container with one published port."""

    def __init__(self) -> None:
        self.forwarded = 0
        self.closed = 0

    def get(self, name: str) -> Any:
        return name

    def published_ports(self, handle: Any) -> list[PublishedPort]:
        return [PublishedPort("PORT_0", 8000, 32768, "127.0.0.1:32768")]

    def forward_ports(self, ports: list[PublishedPort]) -> tuple[list[PublishedPort], Any]:
        self.forwarded += 1

        def close() -> None:
            self.closed += 1

        return ports, close


def test_a_job_still_starting_is_forwarded_once_it_runs(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"), repo="local/p")
    job = JobRecord(id="job1", run="quick-fox-1", workflow="web", provider="bash", state=State.BUILDING)
    store.save_job(job)
    host, said = Host(), list[str]()
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            said.append(line)

    closes = attach(host, store, [job], say, poll_s=0.02)  # type: ignore[arg-type]
    time.sleep(0.2)
    assert said == [] and host.forwarded == 0  # nothing to forward while it starts
    job.state, job.container = State.RUNNING, "dtrun-quick-fox-1-web"
    store.save_job(job)
    wait_for(lambda: any("PORT_0 (8000 in the job) -> http://127.0.0.1:32768" in line for line in said))
    assert said[0] == "web (job job1):" and host.forwarded == 1
    for close in closes:
        close()
    assert host.closed == 1


def test_a_running_job_is_forwarded_at_once_and_a_finished_one_ends_the_watch(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"), repo="local/p")
    running = JobRecord(id="job2", run="r", workflow="a", provider="bash", state=State.RUNNING, container="c2")
    starting = JobRecord(id="job3", run="r", workflow="b", provider="bash", state=State.SUBMITTED)
    for job in (running, starting):
        store.save_job(job)
    host, said = Host(), list[str]()
    closes = attach(host, store, [running, starting], said.append, poll_s=0.02)  # type: ignore[arg-type]
    assert said[0] == "a (job job2):" and host.forwarded == 1  # said before attach returns
    starting.state = State.FAILED
    store.save_job(starting)
    time.sleep(0.2)
    assert host.forwarded == 1  # the job that never ran is not forwarded
    for close in closes:
        close()
    assert host.closed == 1
