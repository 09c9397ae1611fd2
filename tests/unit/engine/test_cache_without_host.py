"""A run whose jobs are all cache hits asks nothing of the backend when it keeps a record of its images
(issue 19): no image lookup, no resource check, no CPU count; a miss takes the normal path."""

from __future__ import annotations

from pathlib import Path

from dtrun.backends.base import ImageInfo, Output
from dtrun.config import Settings
from dtrun.engine.runner import Engine
from dtrun.errors import ResourceError
from dtrun.images.spec import ImageSpec
from dtrun.plan import Job, Plan
from dtrun.snapshot import Snapshot
from dtrun.spec.models import Resources
from dtrun.store import State, Store
from tests.unit.engine.fake_backend import FakeBackend, Script


class RecordingBackend(FakeBackend):
    """A FakeBackend with a record of its images, that notes every call which would reach its host."""

    def __init__(self, scripts: dict[str, Script]) -> None:
        super().__init__(scripts)
        self.record: dict[str, ImageInfo] = {}
        self.image_id = "sha256:one"
        self.reached: list[str] = []
        self.refuse = False

    def recorded_image(self, spec: ImageSpec, settings: Settings) -> tuple[str, ImageInfo] | None:
        ref = spec.user_image or "fake/image"
        return (ref, self.record[ref]) if ref in self.record else None

    def resolve_image(self, spec: ImageSpec, settings: Settings, *, output: Output, rebuild: str = "",
                      step: Output | None = None, say: Output | None = None) -> tuple[str, ImageInfo, bool]:
        self.reached.append("resolve")
        ref = spec.user_image or "fake/image"
        self.record[ref] = ImageInfo(id=self.image_id)
        return ref, self.record[ref], False

    def check_resources(self, workflow: str, resources: Resources, nodes: int = 1) -> None:
        self.reached.append(f"check {workflow}")
        if self.refuse:
            raise ResourceError(f"workflow '{workflow}' is refused")

    def host_cpus(self) -> int | None:
        self.reached.append("cpus")
        return 4


def job(name: str, *needs: str) -> Job:
    return Job(workflow=name, provider="bash", image=ImageSpec("bash", user_image="fake/busybox"),
               command=["job", name], entrypoint=None, env={}, working_dir="/workspace", artifacts=[],
               resources=Resources(), needs=list(needs))


def run(tmp_path: Path, backend: RecordingBackend, plan: Plan) -> list[State]:
    store = Store(str(tmp_path / "store"), "local/test")
    snapshot = Snapshot(tmp_path, [], None, None, False, "local/test")
    result = Engine(Settings(store=str(tmp_path / "store")), store, backend, snapshot).run(plan)
    return [j.state for j in result.jobs]


PLAN = Plan("all", [job("a"), job("b"), job("all", "a", "b")])


def test_cache_hits_reach_nothing_and_a_rebuilt_image_runs_again(tmp_path: Path) -> None:
    backend = RecordingBackend({"a": Script(), "b": Script(), "all": Script()})
    assert run(tmp_path, backend, PLAN) == [State.DONE] * 3
    assert sorted(backend.reached) == ["check a", "check all", "check b", "cpus", "resolve", "resolve", "resolve"]

    backend.reached.clear()
    assert run(tmp_path, backend, PLAN) == [State.CACHED] * 3
    assert backend.reached == []  # no lookup, no check, no CPU count: the host is never asked
    assert len(backend.history) == 3

    backend.image_id = "sha256:two"  # rebuilt through the backend (`dtrun images build`): recorded
    backend.resolve_image(ImageSpec("bash", user_image="fake/busybox"), Settings(store="s"), output=print)
    assert run(tmp_path, backend, PLAN) == [State.DONE] * 3  # another image id: another key, a miss
    backend.reached.clear()
    assert run(tmp_path, backend, PLAN) == [State.CACHED] * 3 and backend.reached == []


def test_a_stale_record_gives_a_miss_then_the_host_decides(tmp_path: Path) -> None:
    backend = RecordingBackend({"a": Script()})
    plan = Plan("a", [job("a")])
    assert run(tmp_path, backend, plan) == [State.DONE]
    backend.record["fake/busybox"] = ImageInfo(id="sha256:stale")  # the record is out of date
    backend.reached.clear()
    assert run(tmp_path, backend, plan) == [State.CACHED]  # the record's key misses; the host's id hits
    assert backend.reached == ["check a", "resolve"] and len(backend.history) == 1


def test_the_resource_check_still_comes_before_anything_starts(tmp_path: Path) -> None:
    backend = RecordingBackend({"a": Script(), "b": Script()})
    backend.refuse = True
    store = Store(str(tmp_path / "store"), "local/test")
    snapshot = Snapshot(tmp_path, [], None, None, False, "local/test")
    engine = Engine(Settings(store=str(tmp_path / "store")), store, backend, snapshot)
    try:
        engine.run(Plan("b", [job("a"), job("b", "a")]))
    except ResourceError as exc:
        assert "is refused" in exc.message
    else:
        raise AssertionError("the run was not refused")
    assert backend.history == []
