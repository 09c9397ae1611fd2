from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from dtrun.engine.scheduler import Scheduler, parallel_limit
from dtrun.errors import DtrunError


class FakeJob:
    def __init__(self, workflow: str, needs: list[str] | None = None) -> None:
        self.workflow = workflow
        self.needs = needs or []


def drive(scheduler: Scheduler) -> None:
    while not scheduler.poll(0.05):
        pass


def test_independent_jobs_run_at_the_same_time_and_dependents_after() -> None:
    jobs: list[Any] = [FakeJob("a"), FakeJob("b"), FakeJob("c", ["a", "b"])]
    active, peak, order = [0], [0], []
    lock = threading.Lock()

    def run(job: Any) -> bool:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.2)
        with lock:
            active[0] -= 1
            order.append(job.workflow)
        return True

    drive(Scheduler(jobs, run, lambda j, w: None, limit=4))
    assert peak[0] == 2 and order[-1] == "c"


def test_limit_and_failed_upstream() -> None:
    jobs: list[Any] = [FakeJob("a"), FakeJob("b"), FakeJob("c", ["a"]), FakeJob("d", ["b"])]
    active, peak, skipped = [0], [0], []

    def run(job: Any) -> bool:
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        active[0] -= 1
        return bool(job.workflow != "a")

    scheduler = Scheduler(jobs, run, lambda j, why: skipped.append((j.workflow, why)), limit=1)
    drive(scheduler)
    assert peak[0] == 1
    assert skipped == [("c", "not run: a did not succeed")]
    assert scheduler.results == {"a": False, "b": True, "c": False, "d": True}


def test_admission_check_holds_a_job_back() -> None:
    jobs: list[Any] = [FakeJob("gpu1"), FakeJob("gpu2")]
    overlap = []

    def admit(job: Any, running: list[Any]) -> bool:
        return not running  # one "GPU": one job at a time

    def run(job: Any) -> bool:
        overlap.append(job.workflow)
        time.sleep(0.05)
        return True

    drive(Scheduler(jobs, run, lambda j, w: None, limit=4, admit=admit))
    assert overlap == ["gpu1", "gpu2"]


def test_errors_are_kept_for_the_engine() -> None:
    def run(job: Any) -> bool:
        raise DtrunError("boom")

    scheduler = Scheduler([FakeJob("a")], run, lambda j, w: None, limit=2)  # type: ignore[list-item]
    drive(scheduler)
    assert scheduler.results == {"a": False} and str(scheduler.errors[0]) == "boom"


def test_parallel_limit() -> None:
    assert parallel_limit(None, 8) == 8
    assert parallel_limit(None, None) == 1
    assert parallel_limit("3", 8) == 3
    with pytest.raises(DtrunError, match="max_parallel"):
        parallel_limit("zero", 8)
