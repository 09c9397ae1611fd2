"""The engine against an in-memory backend: order, parallelism, GPU admission, stop, cache, failure,
reconcile. No Docker: `fake_backend.FakeBackend` scripts what each job prints and how it exits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dtrun.config import Settings
from dtrun.engine import control
from dtrun.engine.events import OUTPUT, RESULT, Event
from dtrun.engine.reconcile import reconcile
from dtrun.engine.runner import Engine
from dtrun.errors import DtrunError, ResourceError
from dtrun.images.spec import ImageSpec
from dtrun.plan import Job, Plan
from dtrun.snapshot import Snapshot
from dtrun.spec.models import Gpu, Resources
from dtrun.store import State, Store
from tests.unit.engine.fake_backend import FakeBackend, Script


def job(name: str, *needs: str, gpus: int = 0) -> Job:
    return Job(workflow=name, provider="bash", image=ImageSpec("bash", user_image="fake/busybox"),
               command=["job", name], entrypoint=None, env={}, working_dir="/workspace", artifacts=[],
               resources=Resources(gpu=Gpu(count=gpus) if gpus else None), needs=list(needs))


def make(tmp_path: Path, backend: FakeBackend, *, parallel: str | None = None,
         secrets: dict[str, str] | None = None) -> tuple[Engine, list[Event]]:
    events: list[Event] = []
    store = Store(str(tmp_path / "store"), "local/test")
    snapshot = Snapshot(tmp_path, [], None, None, False, "local/test")
    engine = Engine(Settings(store=str(tmp_path / "store"), max_parallel=parallel), store, backend, snapshot,
                    events.append, secrets=secrets)
    return engine, events


def span(backend: FakeBackend, name: str) -> tuple[float, float]:
    found = next(c for c in backend.history if c.labels.get("dev.dtrun.workflow") == name)
    return found.started, found.ended


def test_jobs_run_after_the_jobs_they_need(tmp_path: Path) -> None:
    backend = FakeBackend({"a": Script(b"one\n", 0.2), "b": Script(b"two\n")})
    engine, events = make(tmp_path, backend)
    result = engine.run(Plan("b", [job("a"), job("b", "a")]))
    assert result.exit_code == 0 and [j.state for j in result.jobs] == [State.DONE, State.DONE]
    assert span(backend, "a")[1] <= span(backend, "b")[0]
    assert b"".join(e.data for e in events if e.kind == OUTPUT) == b"one\ntwo\n"


def test_independent_jobs_run_in_parallel_up_to_the_limit(tmp_path: Path) -> None:
    scripts = {"a": Script(seconds=0.4), "b": Script(seconds=0.4), "all": Script()}
    plan = Plan("all", [job("a"), job("b"), job("all", "a", "b")])
    backend = FakeBackend(scripts)
    make(tmp_path / "1", backend, parallel="2")[0].run(plan)
    assert span(backend, "a")[0] < span(backend, "b")[1] and span(backend, "b")[0] < span(backend, "a")[1]
    serial = FakeBackend(scripts)
    make(tmp_path / "2", serial, parallel="1")[0].run(plan)
    first, second = sorted([span(serial, "a"), span(serial, "b")])
    assert first[1] <= second[0]


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_max_parallel_must_be_positive_and_never_spins(tmp_path: Path, value: str) -> None:
    engine, _ = make(tmp_path, FakeBackend({"a": Script()}), parallel=value)
    started = time.monotonic()
    with pytest.raises(DtrunError, match="max_parallel must be a positive number"):
        engine.run(Plan("a", [job("a")]))
    assert time.monotonic() - started < 5


def test_gpu_jobs_wait_for_free_gpus(tmp_path: Path) -> None:
    backend = FakeBackend({"a": Script(seconds=0.3), "b": Script(seconds=0.3)}, gpus=1)
    engine, _ = make(tmp_path, backend, parallel="4")
    result = engine.run(Plan("b", [job("a", gpus=1), job("b", gpus=1)]))
    assert result.exit_code == 0
    first, second = sorted([span(backend, "a"), span(backend, "b")])
    assert first[1] <= second[0]  # one GPU: never both at once
    assert [c.gpus for c in backend.history] == [["GPU-fake-0"], ["GPU-fake-0"]]


def test_a_job_asking_for_more_gpus_than_the_host_has_is_refused_before_anything_runs(tmp_path: Path) -> None:
    backend = FakeBackend({"a": Script()}, gpus=1)
    engine, _ = make(tmp_path, backend)
    with pytest.raises(ResourceError, match="asks for 2 GPU"):
        engine.run(Plan("a", [job("a", gpus=2)]))
    assert backend.history == []


def test_a_multi_node_job_is_checked_for_all_its_nodes_gpus(tmp_path: Path) -> None:
    """The engine tells the backend how many nodes a job has: 2 nodes of 1 GPU need 2 on a 1-GPU host."""
    from dataclasses import replace

    from dtrun.providers.torchrun_launch import Torchrun

    backend = FakeBackend({"a": Script()}, gpus=1)
    engine, _ = make(tmp_path, backend)
    ddp = replace(job("a", gpus=1), torchrun=Torchrun(nodes=2, nproc_per_node=1))
    with pytest.raises(ResourceError, match="asks for 2 GPU"):
        engine.run(Plan("a", [ddp]))
    assert backend.history == []


def test_a_failure_skips_the_jobs_that_need_it(tmp_path: Path) -> None:
    backend = FakeBackend({"a": Script(b"boom\n", exit=3), "b": Script(), "c": Script()})
    engine, _ = make(tmp_path, backend)
    result = engine.run(Plan("b", [job("a"), job("b", "a"), job("c")]))
    states = {j.workflow: (j.state, j.message) for j in result.jobs}
    assert states["a"] == (State.FAILED, "exited with code 3")
    assert states["b"] == (State.FAILED, "not run: a did not succeed")
    assert states["c"][0] == State.DONE
    assert result.exit_code == 3 and result.run.state == State.FAILED


def test_a_stop_request_stops_the_running_job(tmp_path: Path) -> None:
    backend = FakeBackend({"a": Script(b"working\n", seconds=30)})
    engine, _ = make(tmp_path, backend)
    plan = Plan("a", [job("a")])
    outcome: list[object] = []
    runner = threading.Thread(target=lambda: outcome.append(engine.run(plan)))
    runner.start()
    while not any(c.status == "running" for c in backend.history):
        time.sleep(0.02)
    record = next(iter(engine.store.load_run(engine.store.run_names()[0]).jobs))
    control.request(engine.store, record, control.STOP)
    backend.stop(backend.history[0])
    runner.join(10)
    assert not runner.is_alive()
    job_record = engine.store.load_job(record)
    assert job_record.state == State.STOPPED and job_record.exit_code == 143


def test_an_unchanged_job_is_reused_from_the_cache(tmp_path: Path) -> None:
    backend = FakeBackend({"a": Script(b"computed\n")})
    engine, events = make(tmp_path, backend)
    plan = Plan("a", [job("a")])
    assert engine.run(plan).jobs[0].state == State.DONE
    events.clear()
    again = engine.run(plan).jobs[0]
    assert again.state == State.CACHED and len(backend.history) == 1
    assert any(e.kind == RESULT and e.state == "CACHED" for e in events)
    assert b"computed\n" in b"".join(e.data for e in events if e.kind == OUTPUT)  # the output, replayed
    assert engine.run(plan, no_cache=True).jobs[0].state == State.DONE and len(backend.history) == 2


def test_secrets_are_masked_on_the_terminal_and_in_the_stored_log(tmp_path: Path) -> None:
    backend = FakeBackend({"a": Script(b"the token is hunter2-xyz\n")})
    engine, events = make(tmp_path, backend, secrets={"TOKEN": "hunter2-xyz"})
    record = engine.run(Plan("a", [job("a")])).jobs[0]
    shown = b"".join(e.data for e in events if e.kind == OUTPUT)
    stored = engine.store.read_bytes(engine.store.job_path(record.id, "logs.txt"))
    assert shown == b"the token is ***\n" and b"hunter2" not in stored and b"the token is ***" in stored


def test_reconcile_settles_a_run_whose_client_died(tmp_path: Path) -> None:
    from dtrun.backends.base import LABEL, ContainerSpec

    backend = FakeBackend({"a": Script(b"done by itself\n", seconds=0.1)})
    engine, _ = make(tmp_path, backend)
    plan = Plan("a", [job("a")])
    # what a killed client leaves behind: the run and its job recorded RUNNING, the job's container
    # started (labelled as the engine labels it), and no process watching either
    run = engine.submit(plan)
    record = engine._new_job(run, plan.jobs[0])
    record.move(State.RUNNING)
    engine.store.save_job(record)
    run.jobs, run.state = [record.id], State.RUNNING
    engine.store.save_run(run)
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    control.claim(engine.store, run.name, pid=dead.pid)  # the client that ran it, now gone
    labels = engine.labels(**{f"{LABEL}.run": run.name, f"{LABEL}.job": record.id, f"{LABEL}.workflow": "a"})
    container = backend.submit(ContainerSpec("c", "fake/busybox", ["job", "a"], None, {}, "/", labels))
    backend.start(container)
    assert reconcile(engine.store, lambda: backend, lambda: []) == [run.name]
    assert engine.store.load_job(record.id).state == State.RUNNING  # still running: left alone
    container.done.wait(5)
    reconcile(engine.store, lambda: backend, lambda: [])
    settled = engine.store.load_job(record.id)
    assert settled.state == State.DONE and settled.exit_code == 0, settled
    assert engine.store.load_run(run.name).state == State.DONE
    assert b"done by itself" in engine.store.read_bytes(engine.store.job_path(record.id, "logs.txt"))
    assert backend.containers == {}  # collected and removed


def test_a_job_that_asks_for_its_slot_again_does_not_wait_for_itself(tmp_path: Path) -> None:
    """Parts of one job share a path that takes the run's slot (an agent job is a container job that
    waits in a queue): with one slot, asking again on the same thread must not deadlock, while another
    thread still waits for the slot."""
    engine, _ = make(tmp_path, FakeBackend({}), parallel="1")
    entered = threading.Event()
    other_in = threading.Event()

    def other() -> None:
        entered.wait(5)
        with engine.slot():
            other_in.set()

    waiter = threading.Thread(target=other)
    waiter.start()
    done = threading.Event()

    def nested() -> None:
        with engine.slot():
            entered.set()
            with engine.slot():
                time.sleep(0.2)
                assert not other_in.is_set()  # the one slot is still this thread's
            done.set()

    worker = threading.Thread(target=nested)
    worker.start()
    worker.join(5)
    waiter.join(5)
    assert done.is_set() and other_in.is_set()
