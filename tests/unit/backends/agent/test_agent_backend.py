"""The shared agent-job layer over a queue kept in memory: what `wait`, `logs`, `find`, `claim` and the
container-only methods answer, from the queue's word plus what the agent wrote to a real store folder.

The queue is a test double of the five queue operations a cluster backend writes (the real ones run
against the Slurm cluster in tests/integration/slurm); everything above it is the code under test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtrun.backends.agent import AgentHandle, AgentJobBackend, QueueJob
from dtrun.backends.agent.images import agent_files, agent_spec
from dtrun.backends.agent.status import follow_log
from dtrun.backends.base import CREATED, EXITED, LABEL, RUNNING, AgentBackend, AgentJobSpec, Backend, Output
from dtrun.config import Settings
from dtrun.errors import DtrunError
from dtrun.images.spec import ImageSpec
from dtrun.store import Store

REPO = "local/agent-test"


class MemoryQueue(AgentJobBackend):
    host = "memory"
    poll = 0.01

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.jobs: dict[str, QueueJob] = {}
        self.signals: list[tuple[str, str]] = []

    def submit_job(self, spec: AgentJobSpec, notify: Output) -> str:
        job_id = str(len(self.jobs) + 1)
        self.jobs[job_id] = QueueJob(job_id, spec.name, spec.labels, CREATED, reason="Priority")
        return job_id

    def list_jobs(self, labels: dict[str, str]) -> list[QueueJob]:
        return list(self.jobs.values())

    def lookup(self, handle: AgentHandle) -> QueueJob | None:
        return self.jobs.get(handle.id)

    def signal_job(self, handle: AgentHandle, signal: str) -> None:
        self.signals.append((handle.id, signal))

    def cancel_job(self, handle: AgentHandle) -> None:
        self.signals.append((handle.id, "cancel"))

    def end(self, job_id: str, code: int | None, cancelled: str | None = None) -> None:
        old = self.jobs[job_id]
        self.jobs[job_id] = QueueJob(old.id, old.name, old.labels, EXITED, exit_code=code, cancelled=cancelled)


@pytest.fixture
def queue(tmp_path: Path) -> MemoryQueue:
    return MemoryQueue(Settings(store=str(tmp_path / "store")))


def launch(queue: MemoryQueue, job: str = "j1") -> AgentHandle:
    labels = {LABEL: "1", f"{LABEL}.repo": REPO, f"{LABEL}.job": job, f"{LABEL}.run": "r", f"{LABEL}.store": "s"}
    spec = AgentJobSpec(name=f"dtrun-r-{job}", run="r", job_id=job, workflow="w", image="img", labels=labels,
                        manifest="{}", secrets={}, working_dir="/workspace")
    return queue.launch(spec)


def agent_wrote(queue: MemoryQueue, job: str, status: dict[str, object]) -> None:
    store = Store(queue.settings.store, REPO)
    store.write_bytes(store.job_path(job, "agent.json"), json.dumps(status).encode())


def test_it_is_both_protocols(queue: MemoryQueue) -> None:
    assert isinstance(queue, AgentBackend) and isinstance(queue, Backend)


def test_wait_reports_the_agents_exit_and_saved_outputs(queue: MemoryQueue) -> None:
    handle = launch(queue)
    assert queue.queued(handle) and queue.pending_reason(handle) == "Priority"
    assert queue.phase(handle) == RUNNING  # not "created": nobody has to start it, a reconcile leaves it
    artifact = {"path": "out", "container_path": "/workspace/out", "key": "k", "digest": "d", "files": 1, "size": 2}
    agent_wrote(queue, "j1", {"state": "exited", "exit_code": 3, "artifacts": [artifact], "refused": []})
    queue.end(handle.id, 3)
    exit_info = queue.wait(handle)
    assert (exit_info.code, exit_info.saved, exit_info.stopped) == (3, [artifact], None)


def test_a_job_that_ended_without_its_agent_saving_anything_says_why(queue: MemoryQueue) -> None:
    handle = launch(queue)
    queue.end(handle.id, None)
    exit_info = queue.wait(handle)
    assert exit_info.code == 137 and exit_info.saved == []
    assert "no outputs saved" in exit_info.refused[0]


def test_a_cancel_from_outside_is_a_stop_with_the_queues_words(queue: MemoryQueue) -> None:
    handle = launch(queue)
    agent_wrote(queue, "j1", {"state": "exited", "exit_code": 143, "stopped": True, "artifacts": []})
    queue.end(handle.id, 0, cancelled="cancelled in the queue")
    assert queue.wait(handle).stopped == "cancelled in the queue"


def test_stop_signals_a_running_job_and_cancels_a_queued_one(queue: MemoryQueue) -> None:
    queued, running = launch(queue, "a"), launch(queue, "b")
    old = queue.jobs[running.id]
    queue.jobs[running.id] = QueueJob(old.id, old.name, old.labels, RUNNING)
    queue.stop(queued)
    queue.stop(running)
    queue.kill(running)
    assert queue.signals == [(queued.id, "cancel"), (running.id, "TERM"), (running.id, "cancel")]


def test_find_matches_labels_and_one_claim_wins(queue: MemoryQueue) -> None:
    first, second = launch(queue, "a"), launch(queue, "b")
    assert [h.id for h in queue.find({f"{LABEL}.job": "b"})] == [second.id]
    assert queue.get(first.name) is not None and queue.get("nope") is None
    other = MemoryQueue(queue.settings)
    assert queue.claim(first) is True
    assert other.claim(first) is False


def test_logs_follow_the_stored_log_until_the_job_ends(queue: MemoryQueue) -> None:
    handle = launch(queue)
    store = Store(queue.settings.store, REPO)
    path = store.job_path("j1", "logs.txt")
    store.write_bytes(path, b"2026-01-01T00:00:00.000001Z one\n2026-01-01T00:00:01.000001Z tw")
    calls = iter([False, True])

    def finished() -> bool:
        done = next(calls)
        if done:
            store.write_bytes(path, b"2026-01-01T00:00:00.000001Z one\n2026-01-01T00:00:01.000001Z two\n")
        return done

    lines = list(follow_log(store, "j1", finished, follow=True, poll=0.01))
    assert lines == [b"2026-01-01T00:00:00.000001Z one\n", b"2026-01-01T00:00:01.000001Z two\n"]
    queue.end(handle.id, 0)
    assert list(queue.logs(handle, follow=False)) == [b"one\n", b"two\n"]
    assert list(queue.logs(handle, follow=False, since=1767225600.5)) == [b"two\n"]


def test_the_container_path_is_refused_in_words(queue: MemoryQueue) -> None:
    with pytest.raises(DtrunError, match="needs the Docker backend"):
        queue.create_volume("v", {})
    queue.remove_volume("v")  # reconcile may ask: nothing to do


def test_the_agent_layer_carries_what_the_agent_imports_and_s3fs_for_s3_stores() -> None:
    import subprocess
    import sys

    files = agent_files()
    assert "site/dtrun/agent/__main__.py" in files and "site/fsspec/__init__.py" in files
    assert not any(name.startswith("site/dtrun/engine/") for name in files)
    code = ("import sys, dtrun.agent.__main__, dtrun.agent.runner, dtrun.agent.storeio; "
            "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.startswith('dtrun')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    root = Path(agent_files.__code__.co_filename).parents[2]
    assert {f"site/dtrun/{Path(p).relative_to(root).as_posix()}" for p in loaded} <= set(files)
    spec = ImageSpec(provider="bash", pip_packages=("numpy",))
    assert agent_spec(spec, "/shared/store") == spec
    assert agent_spec(spec, "s3://bucket/x").pip_packages == ("numpy", "s3fs")


def test_every_dtrun_import_in_the_agent_layer_is_shipped_with_it() -> None:
    """Imports inside functions too (archive.py imports its tar streaming where it is used): a module
    missing from the layer only fails in the job, when the agent saves outputs on the cluster. Left
    out: `if TYPE_CHECKING:` blocks and a package's lazy `__getattr__` exports (`dtrun.Session`,
    `dtrun.store.Store`), which the agent never touches."""
    import ast

    def imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
        for node in ast.iter_child_nodes(tree):
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                continue
            if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                yield node
            yield from imports(node)

    files = agent_files()
    shipped = {name.removeprefix("site/") for name in files if name.startswith("site/dtrun/")}

    def found(module: str) -> bool:
        path = module.replace(".", "/")
        return f"{path}.py" in shipped or f"{path}/__init__.py" in shipped

    missing = []
    for name in sorted(shipped):
        package = name.rsplit("/", 1)[0].replace("/", ".")
        if name.endswith("/__init__.py"):
            package = name.removesuffix("/__init__.py").replace("/", ".")
        for node in imports(ast.parse(files[f"site/{name}"])):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}" if base else parent
                modules = [base]
            missing += [f"{name}: {m}" for m in modules if m.split(".")[0] == "dtrun" and not found(m)]
    assert missing == []
