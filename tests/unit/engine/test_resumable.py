"""Which jobs `dtrun resume` takes: stopped ones, and ones whose Docker daemon restarted under them (their
outputs were saved and their program did not fail on its own); a run name stands for its one such job."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtrun.engine.lifecycle import check_resumable, find
from dtrun.errors import DaemonRestarted, DtrunError
from dtrun.store import JobRecord, RunRecord, State, Store


def stored_run(tmp_path: Path, *ends: tuple[State, str]) -> Store:
    store = Store(str(tmp_path / "store"), "local/p")
    jobs = []
    for i, (state, message) in enumerate(ends):
        job = JobRecord(id=f"job{i:08d}", run="quiet-fox-1", workflow=f"w{i}", provider="docker")
        job.move(state, message)
        store.save_job(job)
        jobs.append(job.id)
    store.save_run(RunRecord(name="quiet-fox-1", repo="local/p", workflow="w0", jobs=jobs))
    return store


def test_a_job_cut_short_by_a_daemon_restart_resumes_by_its_run_name(tmp_path: Path) -> None:
    store = stored_run(tmp_path, (State.FAILED, f"{DaemonRestarted.REASON} (tcp://h) while the job ran"),
                       (State.DONE, ""))
    run, record = check_resumable(store, "quiet-fox-1", *find(store, "quiet-fox-1"))
    assert (run.name, record.workflow) == ("quiet-fox-1", "w0")


def test_a_job_that_failed_on_its_own_is_not_resumed(tmp_path: Path) -> None:
    store = stored_run(tmp_path, (State.FAILED, "exited with code 1"))
    with pytest.raises(DtrunError, match="none of its jobs can be resumed; resume takes a job id"):
        check_resumable(store, "quiet-fox-1", *find(store, "quiet-fox-1"))
    with pytest.raises(DtrunError, match="is FAILED; only a stopped job can be resumed"):
        check_resumable(store, "job00000000", *find(store, "job00000000"))


def test_a_run_with_two_stopped_jobs_needs_a_job_id(tmp_path: Path) -> None:
    store = stored_run(tmp_path, (State.STOPPED, "stopped by the user"), (State.STOPPED, "stopped by the user"))
    with pytest.raises(DtrunError, match="2 of its jobs can be resumed"):
        check_resumable(store, "quiet-fox-1", *find(store, "quiet-fox-1"))
    assert check_resumable(store, "job00000001", *find(store, "job00000001"))[1].workflow == "w1"
