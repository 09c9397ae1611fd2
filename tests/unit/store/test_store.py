"""The store on a local folder: atomic records, tags, repository namespaces, completion markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtrun.engine.artifacts import tar_path, upload_folder
from dtrun.engine.inputs import resolve_dep
from dtrun.errors import DtrunError, NotFound
from dtrun.spec.models import Dep
from dtrun.store import JobRecord, RunRecord, State, Store, TagRecord
from dtrun.store.tags import new_upload_job, tag_run, tag_upload


def store_at(tmp_path: Path, repo: str = "github.com/alice/data") -> Store:
    return Store(str(tmp_path / "store"), repo)


def test_records_are_written_without_leftovers(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.save_run(RunRecord(name="r-1", repo=store.repo, workflow="w"))
    store.save_run(RunRecord(name="r-1", repo=store.repo, workflow="w2"))
    folder = tmp_path / "store" / "repos" / "github.com" / "alice" / "data" / "runs"
    assert sorted(p.name for p in folder.iterdir()) == ["r-1.json"]
    assert store.load_run("r-1").workflow == "w2"


def finished_run(store: Store, state: State = State.DONE) -> RunRecord:
    job = JobRecord(id="j1", run="r-1", workflow="download", provider="docker")
    job.move(state)
    store.save_job(job)
    run = RunRecord(name="r-1", repo=store.repo, workflow="download", jobs=["j1"], state=state)
    store.save_run(run)
    return run


def test_tag_a_run_list_and_delete(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    finished_run(store)
    tag = tag_run(store, "mnist", "r-1")
    assert [t.name for t in store.tags()] == ["mnist"]
    assert store.load_run("r-1").tag == "mnist" and tag.jobs == ["j1"]
    with pytest.raises(DtrunError, match="already exists"):
        tag_run(store, "mnist", "r-1")
    store.delete_tag("mnist")
    assert store.tags() == []
    with pytest.raises(NotFound):
        store.delete_tag("mnist")


@pytest.mark.parametrize("name", ["", "a/b", "../x", "-x", "a b", "x" * 200])
def test_bad_tag_names_are_refused(tmp_path: Path, name: str) -> None:
    store = store_at(tmp_path)
    finished_run(store)
    with pytest.raises(DtrunError, match="not a valid tag name"):
        tag_run(store, name, "r-1")


def test_only_successful_finished_runs_can_be_tagged(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    finished_run(store, State.FAILED)
    with pytest.raises(DtrunError, match="did not succeed"):
        tag_run(store, "t", "r-1")
    with pytest.raises(NotFound, match="no run named"):
        tag_run(store, "t", "nope-1")


def test_another_repository_resolves_by_owner_and_name(tmp_path: Path) -> None:
    alice = store_at(tmp_path)
    finished_run(alice)
    tag_run(alice, "mnist", "r-1")
    bob = store_at(tmp_path, "github.com/bob/train")
    assert bob.resolve_repo("alice/data") == "github.com/alice/data"
    assert bob.resolve_repo("github.com/alice/data") == "github.com/alice/data"
    assert bob.load_tag("mnist", "github.com/alice/data").jobs == ["j1"]
    with pytest.raises(NotFound, match="no repository 'carol/x'"):
        bob.resolve_repo("carol/x")
    assert set(bob.repos()) == {"github.com/alice/data"}
    other = Store(str(tmp_path / "store"), "gitlab.com/alice/data")
    finished_run(other)
    with pytest.raises(DtrunError, match="matches several"):
        bob.resolve_repo("alice/data")


def test_upload_becomes_a_tag_that_a_dep_resolves(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.csv").write_text("1,2\n")
    job = new_upload_job(store, "raw")
    job.artifacts.append(upload_folder(store, job.id, data, "data", "/workspace/data"))
    tag = tag_upload(store, "raw", job)
    assert isinstance(tag, TagRecord) and tag.artifacts == ["data"]
    inputs = resolve_dep(store, Dep.validate(":raw"))
    assert [i.record.container_path for i in inputs] == ["/workspace/data"]
    assert store.exists(tar_path(store, job.id, inputs[0].record))
    other = store_at(tmp_path, "github.com/bob/train")
    assert resolve_dep(other, Dep.validate(":alice/data/raw"))[0].record.digest == inputs[0].record.digest
    as_mapping = Dep.validate({"tag": "alice/data/raw"})
    assert resolve_dep(other, as_mapping)[0].record.digest == inputs[0].record.digest
    with pytest.raises(NotFound, match="no tag 'nope'"):
        resolve_dep(store, Dep.validate(":nope"))


def test_an_artifact_without_its_manifest_was_never_saved(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "x").write_text("x")
    record = upload_folder(store, "j9", data, "data", "/workspace/data")
    assert [m["artifact"]["digest"] for m in store.manifests("j9")] == [record.digest]
    Path(store.job_path("j9", "artifacts", f"{record.key}.json")).unlink()
    assert store.manifests("j9") == []


def test_a_new_save_replaces_the_old_tar_only_after_its_manifest(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    data = tmp_path / "ckpt"
    data.mkdir()
    (data / "step").write_text("1")
    first = upload_folder(store, "j9", data, "ckpt", "/workspace/ckpt")
    (data / "step").write_text("2")
    second = upload_folder(store, "j9", data, "ckpt", "/workspace/ckpt")
    folder = Path(store.job_path("j9", "artifacts"))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [Path(tar_path(store, "j9", second)).name, f"{second.key}.json"])
    assert first.digest != second.digest


def test_uploading_a_file_or_nothing_is_refused(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    (tmp_path / "f").write_text("x")
    with pytest.raises(DtrunError, match="is not a folder"):
        upload_folder(store, "j", tmp_path / "f", "f", "/workspace/f")
    with pytest.raises(DtrunError, match="does not exist"):
        upload_folder(store, "j", tmp_path / "missing", "m", "/workspace/m")
