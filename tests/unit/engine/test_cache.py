from __future__ import annotations

from pathlib import Path

from dtrun.engine import cache
from dtrun.engine.artifacts import InputArtifact
from dtrun.images.spec import ImageSpec
from dtrun.plan import Job
from dtrun.spec.models import Resources
from dtrun.store import ArtifactRecord, JobRecord, State, Store


def job(command: str = "true") -> Job:
    return Job(workflow="w", provider="docker", image=ImageSpec(provider="docker", user_image="busybox"),
               command=["sh", "-c", command], entrypoint=[], env={}, working_dir="/workspace", artifacts=[],
               resources=Resources())


def key(**changes: object) -> str:
    args: dict[str, object] = {"code": "c1", "job": job(), "variables": {}, "image_id": "sha256:1", "inputs": [],
                               "secrets": {}}
    args.update(changes)
    return cache.cache_key(**args)  # type: ignore[arg-type]


def test_every_input_changes_the_key() -> None:
    art = ArtifactRecord(path="d", container_path="/workspace/d", key="k", digest="aa", files=1, size=1)
    base = key()
    assert key() == base
    others = [key(code="c2"), key(job=job("false")), key(variables={"x": "1"}), key(image_id="sha256:2"),
              key(inputs=[InputArtifact("r", "j", art)]), key(secrets={"T": "v"})]
    assert len({base, *others}) == 7


def test_lookup_needs_a_done_job_with_complete_artifacts(tmp_path: Path) -> None:
    store = Store(str(tmp_path), "repo")
    art = ArtifactRecord(path="d", container_path="/workspace/d", key="k", digest="aa", files=1, size=1)
    record = JobRecord(id="j1", run="r", workflow="w", provider="docker", state=State.DONE, artifacts=[art])
    store.save_job(record)
    cache.remember(store, "key1", record)
    assert cache.lookup(store, "key1") is None  # the artifact's manifest is missing
    store.write_json(store.job_path("j1", "artifacts", "k.json"), {})
    hit = cache.lookup(store, "key1")
    assert hit is not None and hit.id == "j1"
    assert cache.lookup(store, "other") is None
    record.state = State.FAILED
    store.save_job(record)
    assert cache.lookup(store, "key1") is None
