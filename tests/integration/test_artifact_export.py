"""Exporting a real container's outputs through the Docker API (the remote-safe path): the stored bytes
and digests are right, they equal the local fast path's, and a stream that breaks off part-way records
nothing (the previous complete artifact stays as it was)."""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dtrun.backends.docker import DockerBackend
from dtrun.engine.artifacts import export_artifact, tar_path
from dtrun.errors import ArtifactExportError
from dtrun.store import ArtifactRecord, Store
from tests.conftest import BUSYBOX_IMAGE, SESSION, remove_labelled

LABELS = {"dev.dtrun.store": f"test-{SESSION}-export"}
SCRIPT = ("mkdir -p out/sub && head -c 3000001 /dev/urandom > out/big.bin && echo hi > out/sub/a.txt && "
          "ln -s sub/a.txt out/link && sha256sum out/big.bin out/sub/a.txt")


@pytest.fixture(scope="module")
def filled(docker_client: Any, dtrun_client: Any) -> Iterator[tuple[Any, dict[str, str]]]:
    """A stopped container whose volume holds `out/` and the sha256 of each file as the job saw it
    (made with docker-py; yielded as dtrun's client sees it, the handle the backend gets)."""
    from docker.types import Mount

    volume = docker_client.volumes.create(name=f"dtrun-test-{SESSION}-export", labels=LABELS)
    container = docker_client.containers.create(
        BUSYBOX_IMAGE, ["/bin/sh", "-c", SCRIPT], entrypoint=[], labels=LABELS, working_dir="/workspace",
        mounts=[Mount("/workspace", volume.name, type="volume")], network_disabled=True)
    try:
        container.start()
        assert container.wait()["StatusCode"] == 0
        sums = dict(reversed(line.split()) for line in container.logs().decode().splitlines())
        handle = dtrun_client.containers.get(container.id)
        yield handle, {name.removeprefix("out/"): digest for name, digest in sums.items()}
    finally:
        remove_labelled("dev.dtrun.store", LABELS["dev.dtrun.store"])


@pytest.fixture
def api_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTRUN_NO_LOCAL_VOLUMES", "1")


def stored_files(store: Store, job: str, record: ArtifactRecord) -> dict[str, bytes]:
    with store.open(tar_path(store, job, record), "rb") as data, tarfile.open(fileobj=data) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}  # type: ignore[union-attr]


def test_the_api_export_stores_the_containers_bytes_and_their_digests(
        filled: tuple[Any, dict[str, str]], dtrun_client: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    container, sums = filled
    backend = DockerBackend(dtrun_client, "unix:///var/run/docker.sock")
    store = Store(str(tmp_path / "store"), "local/export")
    monkeypatch.setenv("DTRUN_NO_LOCAL_VOLUMES", "1")
    record = export_artifact(backend, container, store, "api", "out", "/workspace/out")
    assert record is not None and (record.files, record.size) == (2, 3000001 + 3)
    manifest = store.read_json(store.job_path("api", "artifacts", f"{record.key}.json"))
    listed = {f["path"]: f for f in manifest["files"]}
    assert {p: f["sha256"] for p, f in listed.items() if f["type"] == "file"} == sums
    assert listed["link"] == {"path": "link", "mode": 0o777, "type": "symlink", "target": "sub/a.txt"}
    files = stored_files(store, "api", record)
    assert {name: hashlib.sha256(data).hexdigest() for name, data in files.items()} == sums
    monkeypatch.delenv("DTRUN_NO_LOCAL_VOLUMES")
    assert backend.local_path(container, "/workspace/out") is not None  # so the next export is the fast path
    fast = export_artifact(backend, container, store, "fast", "out", "/workspace/out")
    assert fast is not None and fast.digest == record.digest


class Broken(ConnectionError):
    pass


def breaking(stream: Iterator[bytes], after: int, *, error: bool = True) -> Iterator[bytes]:
    """The daemon's real stream, cut after `after` bytes: by an error (a dropped connection, as
    urllib3 reports it) or, with `error=False`, by simply ending (a proxy that closes early)."""
    passed = 0
    try:
        for chunk in stream:
            if passed + len(chunk) > after:
                yield chunk[: after - passed]
                if error:
                    raise Broken("connection lost")
                return
            passed += len(chunk)
            yield chunk
    finally:
        # as a lost connection is closed (the daemon keeps the container locked while it is open)
        stream.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("cut", ["error mid-file", "clean end between members"])
def test_a_stream_that_breaks_off_records_nothing_and_keeps_the_last_complete_artifact(
        filled: tuple[Any, dict[str, str]], dtrun_client: Any, tmp_path: Path, api_only: None, cut: str) -> None:
    container, _ = filled
    backend = DockerBackend(dtrun_client, "unix:///var/run/docker.sock")
    store = Store(str(tmp_path / "store"), "local/export")
    complete = export_artifact(backend, container, store, "job", "out", "/workspace/out")
    assert complete is not None
    manifest_path = store.job_path("job", "artifacts", f"{complete.key}.json")
    before = store.read_json(manifest_path)
    folder = Path(store.job_path("job", "artifacts"))
    listing = sorted(p.name for p in folder.iterdir())
    real = backend.get_archive

    def cut_stream(handle: Any, path: str) -> Iterator[bytes] | None:
        if cut == "error mid-file":
            return breaking(real(handle, path), 1 << 20)  # type: ignore[arg-type]
        # the stream ends right after the last member (its data padded to a block): only tar's end
        # marker is missing, which Python's tarfile would take as a complete archive
        with tarfile.open(fileobj=_joined(real(handle, path))) as tar:
            last = tar.getmembers()[-1]
        end = last.offset_data + (-(-last.size // 512) * 512 if last.isreg() else 0)
        return breaking(real(handle, path), end, error=False)  # type: ignore[arg-type]

    backend.get_archive = cut_stream  # type: ignore[method-assign]
    with pytest.raises(ArtifactExportError) as caught:
        export_artifact(backend, container, store, "job", "out", "/workspace/out", job="train")
    said = "job train: artifact out: the Docker daemon's archive of /workspace/out "
    assert caught.value.message.startswith(said + ("broke off after 1048576 bytes (connection lost)"
                                                   if cut == "error mid-file" else "ended after "))
    assert store.read_json(manifest_path) == before
    assert sorted(p.name for p in folder.iterdir()) == listing  # no half tar, no temporary file left
    assert stored_files(store, "job", complete)  # the complete one is still readable


def _joined(stream: Iterator[bytes] | None) -> Any:
    import io

    assert stream is not None
    return io.BytesIO(b"".join(stream))


def test_nothing_is_recorded_for_a_path_the_job_did_not_create(
        filled: tuple[Any, dict[str, str]], dtrun_client: Any, tmp_path: Path, api_only: None) -> None:
    container, _ = filled
    backend = DockerBackend(dtrun_client, "unix:///var/run/docker.sock")
    store = Store(str(tmp_path / "store"), "local/export")
    assert export_artifact(backend, container, store, "job", "none", "/workspace/none") is None
    assert not os.path.exists(store.job_path("job", "artifacts"))
