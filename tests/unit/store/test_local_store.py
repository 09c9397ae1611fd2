"""A local store does its work with plain file calls (`LocalFiles`, no fsspec import); every other store
goes through fsspec. Both must behave the same: the same primitives are checked on a folder and in memory."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtrun.engine.control import active_runs, mark_active, mark_finished
from dtrun.engine.lifecycle import recent_run_names
from dtrun.errors import NotFound
from dtrun.store import RunRecord, Store
from dtrun.store.failures import StoreUnavailable
from dtrun.store.guarded import local_folder


@pytest.fixture(params=["folder", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "folder":
        yield Store(str(tmp_path / "store"), "local/p")
        return
    url = f"memory://dtrun-test-{uuid.uuid4().hex[:8]}"
    memory = Store(url, "local/p")
    yield memory
    memory.delete(memory.root, recursive=True)


def test_the_primitives_behave_alike_on_a_folder_and_through_fsspec(store: Store, tmp_path: Path) -> None:
    assert store.local == store.url.startswith("/")
    path = store.job_path("j1", "control.json")
    assert not store.exists(path) and store.listdir(store.job_path("j1")) == []
    with pytest.raises(FileNotFoundError):
        store.read_bytes(path)
    store.write_bytes(path, b"one")
    store.write_bytes(path, b"two")
    assert store.read_bytes(path) == b"two" and store.exists(path)
    assert store.listdir(store.job_path("j1")) == ["control.json"], "no temporary file is left"
    with store.open(store.job_path("j1", "logs.txt"), "wb") as fh:
        fh.write(b"line\n")
    with store.open(store.job_path("j1", "logs.txt")) as fh:
        assert fh.read() == b"line\n"
    assert sorted(store.modified(store.job_path("j1"))) == ["control.json", "logs.txt"]
    local_log = tmp_path / "log.txt"
    local_log.write_bytes(b"a whole log\n")
    store.upload(str(local_log), store.job_path("j2", "logs.txt"))
    assert store.read_bytes(store.job_path("j2", "logs.txt")) == b"a whole log\n"
    assert store.size(store.job_path("j2", "logs.txt")) == 12 and store.listdir(store.job_path("j2")) == ["logs.txt"]
    store.delete(path)
    store.delete(path)  # already gone: fine
    assert store.listdir(store.job_path("j1")) == ["logs.txt"]
    assert store.modified(store.repo_path("nothing-here")) == {}


def test_status_picks_the_most_recently_written_runs_from_one_listing(store: Store) -> None:
    for i in range(5):
        store.save_run(RunRecord(name=f"run-{i}", repo=store.repo, workflow="w"))
        if store.local:  # a folder's times are set exactly; in memory they follow the writes
            os.utime(store.run_path(f"run-{i}"), (1000 + i, 1000 + i))
    store.write_bytes(store.repo_path("runs", "notes.txt"), b"not a run")
    assert recent_run_names(store, 3) == ["run-4", "run-3", "run-2"]
    mark_active(store, "run-1")
    assert active_runs(store) == ["run-1"]
    mark_finished(store, "run-1")
    mark_finished(store, "run-1")
    assert active_runs(store) == []
    with pytest.raises(NotFound, match="no run named 'run-9'"):
        store.load_run("run-9")


@pytest.mark.parametrize("url", ["{tmp}/st", "{tmp}/st/", "file://{tmp}/st", "local://{tmp}/st", "st", "./st",
                                 "~/st"])
def test_a_local_store_has_the_root_fsspec_gives_it(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec

    monkeypatch.chdir(tmp_path)
    url = url.format(tmp=tmp_path)
    store = Store(url, "local/p")
    assert store.local and local_folder(url) is not None
    assert store.root == fsspec.core.url_to_fs(url)[1].rstrip("/")


@pytest.mark.parametrize("url", ["s3://bucket/prefix", "memory://x", "simplecache::file:///tmp/x", "gcs://b"])
def test_other_urls_are_not_local_folders(url: str) -> None:
    assert local_folder(url) is None


def test_a_local_store_never_imports_fsspec(tmp_path: Path) -> None:
    """Records, the active-run markers, the up-front probe of every run, its logs and the listing of
    repositories are plain file calls (`LocalFiles`)."""
    code = ("import sys; from dtrun.store import Store; from dtrun.store.records import RunRecord; "
            f"s = Store({str(tmp_path)!r}, 'github.com/a/b'); "
            "s.save_run(RunRecord(name='r', repo=s.repo, workflow='w')); "
            "s.delete(s.run_path('gone')); s.check(); s.upload(sys.executable, s.job_path('j', 'bin')); "
            "assert s.size(s.job_path('j', 'bin')) > 0; print('fsspec' in sys.modules); "
            "print(s.repos()); print('fsspec' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:3] == ["False", "['github.com/a/b']", "False"], done.stdout + done.stderr
    assert not list(tmp_path.glob(".dtrun-probe-*")), "the probe object is removed again"


def test_a_local_store_that_cannot_be_written_is_the_stores_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    store = Store(str(tmp_path / "file"), "local/p")
    with pytest.raises(StoreUnavailable, match=f"cannot write to the store {tmp_path / 'file'}"):
        store.write_bytes(store.run_path("r"), b"{}")
    with pytest.raises(StoreUnavailable, match="cannot read from the store"):
        store.read_bytes(str(tmp_path))


def test_an_exclusive_write_has_one_winner(tmp_path: Path) -> None:
    """Processes racing for one object in a folder store (threads here; the hard link is what decides):
    exactly one makes it, it is whole, and the losers leave no temporary file behind."""
    import threading

    store = Store(str(tmp_path / "store"), "local/p")
    path = store.job_path("j", "claim-1")
    racers = 8
    barrier = threading.Barrier(racers)
    won: list[bytes] = []

    def claim(token: bytes) -> None:
        barrier.wait()
        if store.create_once(path, token):
            won.append(token)

    threads = [threading.Thread(target=claim, args=(f"token-{i}".encode() * 1000,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(won) == 1 and store.read_bytes(path) == won[0]
    assert store.listdir(store.job_path("j")) == ["claim-1"]


def test_an_exclusive_write_never_replaces_an_object(store: Store) -> None:
    path = store.job_path("j", "claim-1")
    assert store.create_once(path, b"first") is True
    assert store.create_once(path, b"second") is False
    assert store.read_bytes(path) == b"first"
