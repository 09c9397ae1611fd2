"""The content-addressed code volume on the real daemon: deltas land through a never-started anchor,
jobs get private copy-on-write views, the fallback copy and the prune script work in real images."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from docker.types import Mount

from dtrun.backends.docker import codevolumes as dv
from dtrun.code import volume as cv
from dtrun.code.index import DigestIndex
from dtrun.code.manifest import Manifest, build_manifest
from dtrun.code.volume import split_layers, volume_name
from tests.code_edits import apply_edits, write
from tests.conftest import BASE_IMAGE, SESSION, git, remove_labelled

BUSYBOX = os.environ.get("DTRUN_TEST_BUSYBOX", "dtrun-local/busybox:latest")
LABELS = {"dev.dtrun": "1", "dev.dtrun.store": f"codevol-{SESSION}"}


@pytest.fixture
def code_volume() -> Iterator[str]:
    name = volume_name(f"test/{uuid.uuid4().hex}", store=SESSION)
    yield name
    remove_labelled("dev.dtrun.store", LABELS["dev.dtrun.store"])


@functools.cache
def ours() -> Any:
    """dtrun's own client, for dtrun's functions (the test's own containers go through docker-py)."""
    from dtrun.backends.docker.connection import connect

    return connect()


def _manifest(root: Path) -> Manifest:
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())
    return build_manifest(root, files, DigestIndex(None))


def _job(client: Any, view: str, script: str) -> str:
    out = client.containers.run(BUSYBOX, ["sh", "-c", script], remove=True, labels=LABELS, network_disabled=True,
                                mounts=[Mount(target="/workspace", source=view, type="volume")])
    return str(out.decode())


SHOW = ("cd /workspace && find . -mindepth 1 ! -type d | sort | while read -r f; do "
        "if [ -L \"$f\" ]; then echo \"$f -> $(readlink \"$f\")\"; else echo \"$f = $(cat \"$f\")\"; fi; done")


def _expected(root: Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*"), key=lambda p: "./" + p.relative_to(root).as_posix()):
        rel = "./" + path.relative_to(root).as_posix()
        if path.is_symlink():
            out.append(f"{rel} -> {os.readlink(path)}")
        elif path.is_file():
            out.append(f"{rel} = {path.read_text().strip()}")
    return out


def test_changes_reach_the_next_tree_and_only_new_bytes_travel(docker_client: Any, code_volume: str,
                                                               tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "data").mkdir(parents=True)
    (root / "a.py").write_text("v1\n")
    (root / "gone.txt").write_text("bye\n")
    (root / "data" / "big.bin").write_bytes(os.urandom(300_000))
    anchor = dv.ensure_code_volume(ours(), code_volume, LABELS)
    first = _manifest(root)
    layers, delta = dv.put_code(anchor, root, first)
    assert delta is not None and len(delta.needed) == 3
    assert dv.put_code(anchor, root, first) == (layers, None)  # nothing changed: nothing sent

    (root / "a.py").write_text("v2\n")
    (root / "gone.txt").unlink()
    (root / "data" / "big.bin").rename(root / "big.bin")
    (root / "new.py").write_text("new\n")
    second = _manifest(root)
    layers, delta = dv.put_code(anchor, root, second)
    assert delta is not None and delta.changed == ["a.py"] and delta.added == ["new.py"]
    assert delta.deleted == ["gone.txt"] and delta.renamed == [("data/big.bin", "big.bin")]
    assert delta.bytes_to_send == len("v2\n") + len("new\n")
    assert len(split_layers(layers)) == 2  # a thin layer on the first tree
    view = dv.code_view(ours(), code_volume, layers, f"{code_volume}-job1", LABELS)
    out = _job(docker_client, view, "cd /workspace && cat a.py new.py && ls -R . && md5sum big.bin")
    import hashlib

    assert "v2\nnew\n" in out and "gone.txt" not in out and "data" not in out
    assert hashlib.md5((root / "big.bin").read_bytes()).hexdigest() in out


def _counting_reads(anchor: Any) -> list[str]:
    """The paths the anchor is asked for (`get_archive`) from now on, each call still made."""
    reads: list[str] = []
    original = anchor.get_archive

    def counted(path: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(path)
        return original(path, *args, **kwargs)

    anchor.get_archive = counted
    return reads


def test_a_tree_this_client_saw_complete_is_not_read_again(docker_client: Any, code_volume: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The marker read (a `get_archive`, ~0.1 s of every run) happens once per tree and client: the
    client's record answers after that; another client (its own data folder) reads it once itself."""
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path / "client-a"))
    root = tmp_path / "p"
    write(root, "a.py", "print(1)\n")
    manifest = _manifest(root)
    anchor = dv.ensure_code_volume(ours(), code_volume, LABELS)
    layers, sent = dv.put_code(anchor, root, manifest)
    assert sent is not None
    reads = _counting_reads(anchor)
    assert dv.put_code(anchor, root, manifest) == (layers, None)
    assert reads == []
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path / "client-b"))
    assert dv.put_code(anchor, root, manifest) == (layers, None)
    assert reads == [f"{cv.CODE_MOUNT}/{cv.tree_marker(manifest.digest)}"]
    assert dv.put_code(anchor, root, manifest) == (layers, None)
    assert len(reads) == 1


def test_a_client_stacks_its_next_tree_on_its_last_put_without_reading_the_volume(
        docker_client: Any, code_volume: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed tree costs one `put_archive`: the client computes the delta from the last tree it put
    here and stacks on its layers (no HEAD.json or marker read). Another client reads both once, and
    stacks on what the volume's HEAD names (the first client's tree)."""
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path / "client-a"))
    root = tmp_path / "p"
    write(root, "a.py", "print(1)\n")
    write(root, "b.py", "same\n")
    anchor = dv.ensure_code_volume(ours(), code_volume, LABELS)
    first, _ = dv.put_code(anchor, root, _manifest(root))
    reads = _counting_reads(anchor)
    write(root, "a.py", "print(2)\n")
    second, delta = dv.put_code(anchor, root, _manifest(root))
    assert reads == [] and delta is not None and delta.bytes_to_send == len("print(2)\n")
    assert split_layers(second)[1:] == split_layers(first)
    view = dv.code_view(ours(), code_volume, second, f"{code_volume}-v2", LABELS)
    try:
        assert _job(docker_client, view, SHOW).split("\n")[:2] == ["./a.py = print(2)", "./b.py = same"]
    finally:
        dv.remove_view(ours(), view)

    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path / "client-b"))
    write(root, "b.py", "changed by b\n")
    manifest = _manifest(root)
    third, delta = dv.put_code(anchor, root, manifest)
    assert reads == [f"{cv.CODE_MOUNT}/{cv.tree_marker(manifest.digest)}", f"{cv.CODE_MOUNT}/{cv.HEAD}"]
    assert delta is not None and delta.bytes_to_send == len("changed by b\n")
    assert split_layers(third)[1:] == split_layers(second)


def test_every_kind_of_change_reaches_the_next_view_through_stacks_and_compactions(
        docker_client: Any, code_volume: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real overlay mounts of real stacks (whiteouts made by the daemon's own extraction), and the copy
    fallback replaying the same layers, in busybox and in a GNU userland."""
    monkeypatch.setattr(cv, "MAX_LAYERS", 4)
    root = tmp_path / "p"
    for name in ("a.py", "gone.txt", "data/big.txt", "pkg/x.py", "pkg/sub/y.py", "lib/m.py", "f",
                 *(f"same/{i}.py" for i in range(10))):  # files no step touches
        write(root, name, f"{name} 1")
    (root / "latest").symlink_to("data/big.txt")
    anchor = dv.ensure_code_volume(ours(), code_volume, LABELS)
    steps: list[tuple[str, list[tuple[str, ...]]]] = [
        ("changed", [("write", "a.py", "a.py 2")]),
        ("added", [("write", "new/n.py", "n 1")]),
        ("deleted", [("rm", "gone.txt")]),
        ("renamed", [("mv", "data/big.txt", "big.txt")]),  # a full stack: squashed onto its full layer
        ("folder deleted", [("rm", "pkg")]),
        ("folder became a file, link retargeted", [("rm", "lib"), ("write", "lib", "lib now a file"),
                                                   ("ln", "latest", "big.txt")]),
        ("file became a folder, deleted file back", [("rm", "f"), ("write", "f/inside.py", "inside 1"),
                                                     ("write", "gone.txt", "back")]),  # most changed: full
        ("deleted again", [("rm", "gone.txt")]),
        ("folder became a file again", [("rm", "f"), ("write", "f", "a file again")]),
        ("renamed back", [("mv", "big.txt", "data/big.txt"), ("ln", "latest", "data/big.txt")]),
        ("changed after a full stack", [("write", "a.py", "a.py 3")]),  # squashed: whiteouts and type changes
    ]
    layers, _ = dv.put_code(anchor, root, _manifest(root))
    depths = [len(split_layers(layers))]
    for i, (what, edits) in enumerate(steps):
        apply_edits(root, edits)
        layers, _ = dv.put_code(anchor, root, _manifest(root))
        depths.append(len(split_layers(layers)))
        view = dv.code_view(ours(), code_volume, layers, f"{code_volume}-s{i}", LABELS)
        assert _job(docker_client, view, SHOW).splitlines() == _expected(root), what
        dv.remove_view(ours(), view)
    assert depths == [1, 2, 3, 4, 2, 3, 4, 1, 2, 3, 4, 2]
    for image in (BUSYBOX, BASE_IMAGE):  # the last tree: a squashed layer with whiteouts and type changes
        target = f"{code_volume}-copy-{len(image)}"
        docker_client.volumes.create(name=target, labels=LABELS)
        dv.copy_view(ours(), image, code_volume, layers, target, LABELS)
        assert _job(docker_client, target, SHOW).splitlines() == _expected(root), image


def test_a_job_never_sees_what_a_concurrent_job_writes(docker_client: Any, code_volume: str,
                                                       tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "a.py").write_text("original\n")
    (root / "b.py").write_text("original\n")  # same bytes: one object, two hard links in the tree
    (root / "c.py").write_text("gone in the next tree\n")
    anchor = dv.ensure_code_volume(ours(), code_volume, LABELS)
    dv.put_code(anchor, root, _manifest(root))
    (root / "c.py").unlink()
    build, _ = dv.put_code(anchor, root, _manifest(root))
    assert len(split_layers(build)) == 2  # a thin layer (a whiteout) over the first tree
    views = [dv.code_view(ours(), code_volume, build, f"{code_volume}-job{i}", LABELS)
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
    third = dv.code_view(ours(), code_volume, build, f"{code_volume}-job3", LABELS)
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
    anchor = dv.ensure_code_volume(ours(), code_volume, LABELS)
    manifest = _manifest(root)
    build, _ = dv.put_code(anchor, root, manifest)
    target = f"{code_volume}-copy"
    docker_client.volumes.create(name=target, labels=LABELS)
    dv.copy_view(ours(), image, code_volume, build, target, LABELS)
    out = _job(docker_client, target, "cd /workspace; echo changed > a; cat a b; stat -c '%a %h' run.sh b")
    assert out.split() == ["changed", "same", "755", "1", "644", "1"]


def test_prune_keeps_what_a_live_view_uses_and_removes_the_rest(docker_client: Any, code_volume: str,
                                                                tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cv, "MAX_LAYERS", 2)
    root = tmp_path / "p"
    root.mkdir()
    anchor = dv.ensure_code_volume(ours(), code_volume, LABELS)
    trees = []
    for version in range(1, 6):  # layers: [A], [B A], [C], [D C], [E]: each tree changes most of the files,
        (root / "a").write_text(f"v{version}\n")  # so a full stack is followed by a full layer
        (root / "b").write_text(f"b{version}\n")
        (root / "keep").write_text("same in every tree\n")
        manifest = _manifest(root)
        trees.append((manifest, dv.put_code(anchor, root, manifest)[0]))
    assert [len(split_layers(layers)) for _, layers in trees] == [1, 2, 1, 2, 1]
    live = dv.code_view(ours(), code_volume, trees[1][1], f"{code_volume}-live", LABELS)  # tree 2: B, A

    def files() -> list[str]:
        out = docker_client.containers.run(
            BUSYBOX, ["sh", "-c", "cd /code && find . -type f | sort"], remove=True, labels=LABELS,
            mounts=[Mount(target="/code", source=code_volume, type="volume", read_only=True)])
        return [str(name) for name in out.decode().split()]

    volumes = dv.DockerCodeVolumes(ours(), BUSYBOX)
    volumes.prune_code(code_volume, [])  # the latest tree (HEAD) is always kept
    kept = files()
    pruned_anchor, anchor = anchor, dv.ensure_code_volume(ours(), code_volume, LABELS)
    assert anchor.id != pruned_anchor.id  # what makes every client's record of the pruned trees lapse
    a, b, c, d, e = (split_layers(trees[i][1])[0] for i in range(5))
    for layer in (a, b, e):
        assert any(f.startswith(f"./layers/{layer}/") for f in kept), layer
    for layer in (c, d):
        assert not any(f.startswith(f"./layers/{layer}/") for f in kept), layer
    for version, (manifest, _) in enumerate(trees, start=1):
        has_object = any(manifest.entries["a"].digest in f for f in kept)
        assert has_object == (version in (1, 2, 5)), version
        assert dv.tree_present(anchor, manifest.digest) == (version == 5)
    assert _job(docker_client, live, "cat /workspace/a").strip() == "v2"  # the live view still reads its tree

    volumes.remove_code_view(live)
    docker_client.containers.run(  # layers no marker names are kept an hour (a put may be writing one)
        BUSYBOX, ["sh", "-c", f"touch -d '2000-01-01 00:00:00' /code/layers/{a} /code/layers/{b}"], remove=True,
        labels=LABELS, mounts=[Mount(target="/code", source=code_volume, type="volume")])
    volumes.prune_code(code_volume, [])
    kept = files()
    assert all(f.startswith(("./layers/" + e, "./objects/", "./trees/", "./HEAD.json", "./whiteout-probe"))
               for f in kept), kept
    assert sum(f.startswith("./objects/") for f in kept) == 3
    anchor = dv.ensure_code_volume(ours(), code_volume, LABELS)
    (root / "a").write_text("v6\n")
    layers, delta = dv.put_code(anchor, root, _manifest(root))  # the next put stacks on what was kept
    assert delta is not None and delta.bytes_to_send == len("v6\n") and split_layers(layers)[1:] == [e]


@pytest.mark.parametrize("overlay", [True, False])
def test_the_backend_facade_ships_by_content_and_isolates_jobs(docker_client: Any, code_volume: str, tmp_path: Path,
                                                               overlay: bool) -> None:
    from dtrun.code.protocol import CodeVolumes

    volumes = dv.DockerCodeVolumes(ours(), BUSYBOX, overlay=overlay)
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
    volumes = dv.DockerCodeVolumes(ours(), BUSYBOX)
    root = tmp_path / "p"
    root.mkdir()
    (root / "a.py").write_text("one\n")
    ref = volumes.put_code(code_volume, root, _manifest(root), LABELS)
    view = volumes.code_view(ref, f"{code_volume}-v1", LABELS)
    assert dv.views_of(ours(), code_volume) == [ref.build]
    assert "view uses it" in (volumes.remove_code(code_volume) or "")
    volumes.remove_code_view(view)
    assert "a run in flight holds" in (volumes.remove_code(code_volume) or "")  # the put's hold, until released
    volumes.release_code(ref)
    assert volumes.remove_code(code_volume) is None
    assert not docker_client.volumes.list(filters={"name": code_volume})
    assert not docker_client.containers.list(all=True, filters={"name": f"{code_volume}-anchor"})


def test_uncommitted_edits_as_git_lists_them_reach_each_next_view(
        docker_client: Any, code_volume: str, make_project: Callable[..., Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The listing of one worktree scan, shipped as deltas from the client's last put: an edit and a
    deletion not staged, an untracked file, a tracked folder `.dtrunignore` drops, then the edit reverted
    and the file restored (a tree seen before), a rename by hand, and a file that became a folder."""
    from dtrun.snapshot import take_snapshot

    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path / "client"))
    root = make_project({"a.py": "committed a\n", "b.py": "committed b\n", "data/x.csv": "1,2\n", "f": "a file\n"})
    anchor = dv.ensure_code_volume(ours(), code_volume, LABELS)

    def shipped() -> list[str]:
        snapshot = take_snapshot(root, root)
        layers, _ = dv.put_code(anchor, root, snapshot.manifest)
        view = dv.code_view(ours(), code_volume, layers, f"{code_volume}-v", LABELS)
        try:
            return _job(docker_client, view, SHOW).splitlines()
        finally:
            dv.remove_view(ours(), view)

    assert shipped() == ["./a.py = committed a", "./b.py = committed b", "./data/x.csv = 1,2", "./f = a file"]
    (root / "a.py").write_text("edited a\n")
    (root / "b.py").unlink()
    (root / "new.py").write_text("untracked\n")
    (root / ".dtrunignore").write_text("data/\n")
    assert shipped() == ["./.dtrunignore = data/", "./a.py = edited a", "./f = a file", "./new.py = untracked"]
    git(root, "checkout", "--", "a.py", "b.py")
    assert shipped() == ["./.dtrunignore = data/", "./a.py = committed a", "./b.py = committed b", "./f = a file",
                         "./new.py = untracked"]
    (root / "new.py").rename(root / "renamed.py")
    (root / "f").unlink()
    (root / "f").mkdir()
    (root / "f" / "inside.py").write_text("now a folder\n")
    assert shipped() == ["./.dtrunignore = data/", "./a.py = committed a", "./b.py = committed b",
                         "./f/inside.py = now a folder", "./renamed.py = untracked"]


def test_a_workspace_view_is_removed_whole_and_only_once_no_container_mounts_it(
        docker_client: Any, code_volume: str, tmp_path: Path) -> None:
    """`remove_volume` (every job's end) asks nothing first and removes the view's companions at once, but
    only after the view itself: a view a container still mounts keeps the folders its overlay writes to."""
    from dtrun.backends.docker.volumes import VolumeOps

    volumes = dv.DockerCodeVolumes(ours(), BUSYBOX)
    backend = VolumeOps()
    backend.client = ours()
    root = tmp_path / "p"
    root.mkdir()
    (root / "a.py").write_text("one\n")
    view = volumes.code_view(volumes.put_code(code_volume, root, _manifest(root), LABELS), f"{code_volume}-v1", LABELS)
    names = {view, f"{view}-upper", f"{view}-work"}

    def left() -> set[str]:
        return {v.name for v in docker_client.volumes.list(filters={"name": view})} & names

    holder = docker_client.containers.create(BUSYBOX, ["true"], labels=LABELS, network_disabled=True,
                                             mounts=[Mount(target="/workspace", source=view, type="volume")])
    backend.remove_volume(view)
    assert left() == names
    holder.remove(force=True)
    backend.remove_volume(view)
    assert left() == set()
    backend.remove_volume(view)  # gone already: nothing to do, no error
