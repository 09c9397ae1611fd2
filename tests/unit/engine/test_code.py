"""The engine's use of code volumes (engine/code.py) against in-memory backends: the tree is put once per
run, each job mounts its own view at the workspace and gets no tar; a backend without code volumes gets
the snapshot copied in as before; the view goes where the workspace went."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO, Any, ClassVar

from dtrun.backends.base import code_volumes
from dtrun.code.protocol import CodeRef, CodeVolumes
from dtrun.config import Settings
from dtrun.engine.events import WARNING, Event
from dtrun.engine.runner import Engine
from dtrun.plan import Plan
from dtrun.snapshot import Snapshot
from dtrun.store import State, Store
from tests.unit.engine.fake_backend import FakeBackend, Script
from tests.unit.engine.test_engine import job


class CodeBackend(FakeBackend):
    """FakeBackend plus `CodeVolumes`, recording what the engine asked for."""

    def __init__(self, scripts: dict[str, Script]) -> None:
        super().__init__(scripts)
        self.puts: list[str] = []
        self.views: list[tuple[str, str | None]] = []
        self.archived: list[str] = []
        self.lock = threading.Lock()
        self.landed = 0  # what the next put says this client has landed (with something sent)
        self.pruned: list[tuple[str, list[str], int, bool]] = []
        self.released: list[str | None] = []

    def put_code(self, volume: str, root: Path, manifest: Any, labels: dict[str, str],
                 hold_labels: dict[str, str] | None = None) -> CodeRef:
        with self.lock:
            self.puts.append(volume)
        assert hold_labels is not None and hold_labels["dev.dtrun.run"]  # the run, on its hold
        assert labels["dev.dtrun.code"] == "local/test"
        if self.landed:
            from dtrun.code.delta import Delta

            return CodeRef(volume, manifest.digest, f"{manifest.digest}-txn", Delta([], [], [], [], {}),
                           hold="hold-1", landed=self.landed)
        return CodeRef(volume, manifest.digest, f"{manifest.digest}-txn", None, hold="hold-1")

    def code_view(self, code: CodeRef, name: str, labels: dict[str, str], image: str | None = None) -> str:
        with self.lock:
            self.views.append((name, image))
        self.volumes.add(name)
        return name

    def remove_code_view(self, name: str) -> None:
        self.volumes.discard(name)

    def prune_code(self, volume: str, keep: list[str], newest: int = 0, wait: bool = True) -> None:
        self.pruned.append((volume, keep, newest, wait))

    def release_code(self, code: CodeRef) -> None:
        self.released.append(code.hold)

    def release_holds(self, labels: dict[str, str]) -> None:
        pass

    def put_archive(self, handle: Any, path: str, data: IO[bytes] | bytes) -> None:
        self.archived.append(path)


def make(tmp_path: Path, backend: FakeBackend) -> tuple[Engine, list[Event]]:
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.py").write_text("print('hi')\n")
    events: list[Event] = []
    store = Store(str(tmp_path / "store"), "local/test")
    snapshot = Snapshot(root, ["train.py"], None, None, False, "local/test", index_file=tmp_path / "index.json")
    return Engine(Settings(store=str(tmp_path / "store"), max_parallel="2"), store, backend, snapshot,
                  events.append), events


def test_the_tree_is_put_once_per_run_and_each_job_mounts_its_own_view(tmp_path: Path) -> None:
    backend = CodeBackend({"a": Script(), "b": Script(), "c": Script()})
    engine, _ = make(tmp_path, backend)
    result = engine.run(Plan("c", [job("a"), job("b"), job("c", "a", "b")]))
    assert [j.state for j in result.jobs] == [State.DONE] * 3
    assert len(backend.puts) == 1 and backend.puts[0].startswith("dtrun-code-")
    assert sorted(name for name, _ in backend.views) == sorted(f"dtrun-ws-{j.id}" for j in result.jobs)
    assert {image for _, image in backend.views} == {"fake/busybox"}  # the job's own image runs any helper
    assert "/workspace" not in backend.archived  # no tar of the code
    mounts = [c.spec.mounts[0] for c in backend.history]
    assert all(m.target == "/workspace" and m.volume.startswith("dtrun-ws-") for m in mounts)
    assert not any(v.startswith("dtrun-ws-") for v in backend.volumes)  # views removed with their jobs


def test_a_backend_without_code_volumes_gets_the_snapshot_copied_in(tmp_path: Path) -> None:
    class Plain(FakeBackend):
        archived: ClassVar[list[str]] = []

        def put_archive(self, handle: Any, path: str, data: IO[bytes] | bytes) -> None:
            self.archived.append(path)

    backend = Plain({"a": Script()})
    assert code_volumes(backend) is None and isinstance(CodeBackend({}), CodeVolumes)
    engine, _ = make(tmp_path, backend)
    assert engine.run(Plan("a", [job("a")])).jobs[0].state == State.DONE
    assert backend.archived == ["/workspace"]


def test_a_cache_hit_puts_nothing(tmp_path: Path) -> None:
    backend = CodeBackend({"a": Script(b"out\n")})
    engine, _ = make(tmp_path, backend)
    engine.run(Plan("a", [job("a")]))
    again = Engine(engine.settings, engine.store, backend, engine.snapshot, lambda e: None)
    assert again.run(Plan("a", [job("a")])).jobs[0].state == State.CACHED
    assert len(backend.puts) == 1 and len(backend.views) == 1


def test_a_run_that_lands_the_kth_tree_prunes_and_every_run_releases_its_hold(tmp_path: Path) -> None:
    backend = CodeBackend({"a": Script(), "b": Script()})
    engine, _ = make(tmp_path, backend)
    assert engine.run(Plan("b", [job("a"), job("b", "a")])).jobs[1].state == State.DONE
    assert backend.pruned == [] and backend.released == ["hold-1"]  # released once, when the jobs are over
    backend.landed = 7  # the default bound is 8: not yet
    engine = Engine(Settings(store=engine.settings.store), engine.store, backend, engine.snapshot, lambda e: None)
    engine.run(Plan("a", [job("a")]), no_cache=True)
    assert backend.pruned == []
    backend.landed = 8
    engine = Engine(Settings(store=engine.settings.store), engine.store, backend, engine.snapshot, lambda e: None)
    engine.run(Plan("a", [job("a")]), no_cache=True)
    [(volume, keep, newest, wait)] = backend.pruned
    assert volume == backend.puts[-1]
    assert keep == [f"{engine.snapshot.digest}-txn"] and newest == 8 and not wait  # its own tree kept
    backend.landed, backend.pruned = 3, []
    engine = Engine(Settings(store=engine.settings.store, code_trees="3"), engine.store, backend, engine.snapshot,
                    lambda e: None)
    engine.run(Plan("a", [job("a")]), no_cache=True)
    assert [newest for _, _, newest, _ in backend.pruned] == [3]
    backend.pruned = []
    engine = Engine(Settings(store=engine.settings.store, code_trees="0"), engine.store, backend, engine.snapshot,
                    lambda e: None)
    engine.run(Plan("a", [job("a")]), no_cache=True)
    assert backend.pruned == [] and len(backend.released) == 5


def test_large_untracked_files_are_a_warning_once(tmp_path: Path) -> None:
    backend = CodeBackend({"a": Script()})
    engine, events = make(tmp_path, backend)
    big = engine.snapshot.root / "data.bin"
    with big.open("wb") as handle:
        handle.truncate(101 * 2**20)
    engine.snapshot.files.append("data.bin")
    engine.snapshot.untracked = frozenset({"data.bin"})
    engine.run(Plan("a", [job("a")]))
    warnings = [e.text for e in events if e.kind == WARNING]
    assert len(warnings) == 1 and "data.bin" in warnings[0] and ".dtrunignore" in warnings[0]
