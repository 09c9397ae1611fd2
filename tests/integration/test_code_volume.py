"""The content-addressed code volume on the real daemon: deltas land through a never-started anchor,
jobs get private copy-on-write views, the fallback copy and the prune script work in real images."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker.types import Mount

from dtrun.backends.docker import codevolumes as dv
from dtrun.code.index import DigestIndex
from dtrun.code.manifest import Manifest, build_manifest
from dtrun.code.volume import volume_name
from tests.conftest import BASE_IMAGE, SESSION, remove_labelled

BUSYBOX = os.environ.get("DTRUN_TEST_BUSYBOX", "dtrun-local/busybox:latest")
LABELS = {"dev.dtrun": "1", "dev.dtrun.store": f"codevol-{SESSION}"}


@pytest.fixture
def code_volume() -> Iterator[str]:
    name = volume_name(f"test/{uuid.uuid4().hex}", store=SESSION)
    yield name
    remove_labelled("dev.dtrun.store", LABELS["dev.dtrun.store"])


def _manifest(root: Path) -> Manifest:
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())
    return build_manifest(root, files, DigestIndex(None))


def _job(client: Any, view: str, script: str) -> str:
    out = client.containers.run(BUSYBOX, ["sh", "-c", script], remove=True, labels=LABELS, network_disabled=True,
                                mounts=[Mount(target="/workspace", source=view, type="volume")])
    return str(out.decode())


def test_changes_reach_the_next_tree_and_only_new_bytes_travel(docker_client: Any, code_volume: str,
                                                               tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "data").mkdir(parents=True)
    (root / "a.py").write_text("v1\n")
    (root / "gone.txt").write_text("bye\n")
    (root / "data" / "big.bin").write_bytes(os.urandom(300_000))
    anchor = dv.ensure_code_volume(docker_client, code_volume, LABELS)
    first = _manifest(root)
    build, delta = dv.put_code(anchor, root, first)
    assert delta is not None and len(delta.needed) == 3
    assert dv.put_code(anchor, root, first) == (build, None)  # nothing changed: nothing sent

    (root / "a.py").write_text("v2\n")
    (root / "gone.txt").unlink()
    (root / "data" / "big.bin").rename(root / "big.bin")
    (root / "new.py").write_text("new\n")
    second = _manifest(root)
    build, delta = dv.put_code(anchor, root, second)
    assert delta is not None and delta.changed == ["a.py"] and delta.added == ["new.py"]
    assert delta.deleted == ["gone.txt"] and delta.renamed == [("data/big.bin", "big.bin")]
    assert delta.bytes_to_send == len("v2\n") + len("new\n")
    view = dv.code_view(docker_client, code_volume, build, f"{code_volume}-job1", LABELS)
    out = _job(docker_client, view, "cd /workspace && cat a.py new.py && ls -R . && md5sum big.bin")
    import hashlib

    assert "v2\nnew\n" in out and "gone.txt" not in out and "data" not in out
    assert hashlib.md5((root / "big.bin").read_bytes()).hexdigest() in out


def test_a_job_never_sees_what_a_concurrent_job_writes(docker_client: Any, code_volume: str,
                                                       tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "a.py").write_text("original\n")
    (root / "b.py").write_text("original\n")  # same bytes: one object, two hard links in the tree
    anchor = dv.ensure_code_volume(docker_client, code_volume, LABELS)
    manifest = _manifest(root)
    build, _ = dv.put_code(anchor, root, manifest)
    views = [dv.code_view(docker_client, code_volume, build, f"{code_volume}-job{i}", LABELS)
             for i in range(2)]
    writer = docker_client.containers.run(
        BUSYBOX, ["sh", "-c", "echo changed > /workspace/a.py; echo x > /workspace/mine; touch /workspace/done; "
                              "sleep 3"], detach=True, labels=LABELS, network_disabled=True,
        mounts=[Mount(target="/workspace", source=views[0], type="volume")])
    try:
        out = _job(docker_client, views[1], "sleep 1; cat /workspace/a.py /workspace/b.py; ls /workspace")
    finally:
        writer.wait()
        writer.remove(force=True)
    assert out.split() == ["original", "original", "a.py", "b.py"]
    third = dv.code_view(docker_client, code_volume, build, f"{code_volume}-job3", LABELS)
    assert _job(docker_client, third, "cat /workspace/a.py /workspace/b.py").split() == ["original", "original"]
    # the writer's own view kept its writes (artifacts are exported from it)
    assert _job(docker_client, views[0], "cat /workspace/a.py /workspace/b.py").split() == ["changed", "original"]


@pytest.mark.parametrize("image", [BUSYBOX, BASE_IMAGE])
def test_the_copy_view_fallback_copies_without_sharing_files(docker_client: Any, code_volume: str,
                                                              tmp_path: Path, image: str) -> None:
    root = tmp_path / "p"
    root.mkdir()
    for name in ("a", "b"):
        (root / name).write_text("same\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    anchor = dv.ensure_code_volume(docker_client, code_volume, LABELS)
    manifest = _manifest(root)
    build, _ = dv.put_code(anchor, root, manifest)
    target = f"{code_volume}-copy"
    docker_client.volumes.create(name=target, labels=LABELS)
    dv.copy_view(docker_client, image, code_volume, build, target, LABELS)
    out = _job(docker_client, target, "cd /workspace; echo changed > a; cat a b; stat -c '%a %h' run.sh b")
    assert out.split() == ["changed", "same", "755", "1", "644", "1"]


def test_prune_drops_old_trees_and_their_objects(docker_client: Any, code_volume: str, tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "a").write_text("old\n")
    anchor = dv.ensure_code_volume(docker_client, code_volume, LABELS)
    old = _manifest(root)
    dv.put_code(anchor, root, old)
    (root / "a").write_text("new\n")
    new = _manifest(root)
    build, _ = dv.put_code(anchor, root, new)
    dv.prune_code(docker_client, BUSYBOX, code_volume, [new.digest], LABELS)
    listing = docker_client.containers.run(
        BUSYBOX, ["sh", "-c", "cd /code && find . -type f | sort"], remove=True, labels=LABELS,
        mounts=[Mount(target="/code", source=code_volume, type="volume", read_only=True)]).decode()
    files = listing.split()
    assert f"./trees/{build}/a" in files and f"./trees/{old.digest}.ok" not in files
    assert not any(f.startswith(f"./trees/{old.digest}") for f in files)
    assert not any(old.entries["a"].digest in f for f in files)
    assert any(new.entries["a"].digest in f for f in files)
    assert dv.tree_present(anchor, new.digest) and not dv.tree_present(anchor, old.digest)


@pytest.mark.parametrize("overlay", [True, False])
def test_the_backend_facade_ships_by_content_and_isolates_jobs(docker_client: Any, code_volume: str, tmp_path: Path,
                                                               overlay: bool) -> None:
    from dtrun.code.protocol import CodeVolumes

    volumes = dv.DockerCodeVolumes(docker_client, BUSYBOX, overlay=overlay)
    assert isinstance(volumes, CodeVolumes)
    root = tmp_path / "p"
    root.mkdir()
    (root / "a.py").write_text("one\n")
    ref = volumes.put_code(code_volume, root, _manifest(root), LABELS)
    assert ref.sent is not None and volumes.put_code(code_volume, root, _manifest(root), LABELS).sent is None
    view = volumes.code_view(ref, f"{code_volume}-v1", LABELS)
    assert _job(docker_client, view, "cat /workspace/a.py; echo two > /workspace/a.py").strip() == "one"
    other = volumes.code_view(ref, f"{code_volume}-v2", LABELS)
    assert _job(docker_client, other, "cat /workspace/a.py").strip() == "one"
    volumes.remove_code_view(view)
    volumes.remove_code_view(other)
    assert not [v for v in docker_client.volumes.list(filters={"name": f"{code_volume}-v"})]


def test_a_code_volume_a_view_uses_is_kept_and_removed_once_free(docker_client: Any, code_volume: str,
                                                                 tmp_path: Path) -> None:
    volumes = dv.DockerCodeVolumes(docker_client, BUSYBOX)
    root = tmp_path / "p"
    root.mkdir()
    (root / "a.py").write_text("one\n")
    ref = volumes.put_code(code_volume, root, _manifest(root), LABELS)
    view = volumes.code_view(ref, f"{code_volume}-v1", LABELS)
    assert dv.views_of(docker_client, code_volume) == [ref.build]
    assert "view uses it" in (volumes.remove_code(code_volume) or "")
    volumes.remove_code_view(view)
    assert volumes.remove_code(code_volume) is None
    assert not docker_client.volumes.list(filters={"name": code_volume})
    assert not docker_client.containers.list(all=True, filters={"name": f"{code_volume}-anchor"})
