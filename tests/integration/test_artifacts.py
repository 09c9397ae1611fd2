"""Artifacts through real containers: export, round-trip, deps mounted read-only, hostile outputs refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BUSYBOX_IMAGE, DtrunRunner

BUSYBOX = f"""
    provider: docker
    image: {BUSYBOX_IMAGE}
"""


def workflows(*items: str) -> dict[str, str]:
    return {".dtrun/workflows.yaml": "workflows:\n" + "".join(items)}


def wf(name: str, commands: list[str], extra: str = "") -> str:
    body = "".join(f"      - {json.dumps(c)}\n" for c in commands)
    return (f"  - name: {name}\n    provider: docker\n    image: {BUSYBOX_IMAGE}\n    commands:\n{body}"
            + "".join(f"    {line}\n" for line in extra.strip("\n").splitlines()))


def download() -> str:
    """The upstream workflow; each call gets its own token so that no two tests share an artifact's
    content key (dep volumes are shared per daemon by content, and tests clean up in parallel)."""
    return wf("download", [
        "mkdir -p output/sub output/empty",
        f"echo {uuid.uuid4().hex} > output/sub/token",
        "echo hello > output/hello.txt",
        "chmod 750 output/hello.txt",
        "printf '#!/bin/sh\\necho ran\\n' > output/tool.sh && chmod 4755 output/tool.sh",
        "ln -s hello.txt output/link",
        "ln -s ../hello.txt output/sub/up",
        "ln -s sub output/dirlink",
    ], "artifacts: [output]")


TRAIN = wf("train", [
    "cat output/hello.txt",
    "ls -ln output | sed 1d | awk '{print $1, $NF}'",
    "readlink output/sub/up",
    "echo x > output/new 2>/dev/null && echo WRITABLE || echo READONLY",
    "mkdir -p model && cp output/hello.txt model/m.bin",
], "depends-on: [download]\nartifacts: [model]")


def jobs_of(store: Path) -> dict[str, dict[str, Any]]:
    return {p.parent.name: json.loads(p.read_text()) for p in store.rglob("jobs/*/job.json")}


def test_depends_on_chain_round_trips_modes_symlinks_and_empty_folders(
        make_project: Any, dtrun: DtrunRunner, tmp_path: Path) -> None:
    project = make_project(workflows(download(), TRAIN))
    result = dtrun("run", "train", cwd=project)
    assert result.code == 0, result.output
    out = result.stdout
    assert "hello" in out
    # What the downstream job sees: modes, links and empty folders as the upstream job made them.
    assert "-rwxr-x--- hello.txt" in out
    assert "-rwsr-xr-x tool.sh" in out
    assert "lrwxrwxrwx hello.txt" in out and "lrwxrwxrwx sub" in out
    assert "drwxr-xr-x empty" in out
    assert "../hello.txt" in out
    assert "READONLY" in out

    listing = dtrun("artifacts", run_name(result), cwd=project)
    assert listing.code == 0, listing.output
    assert "output/hello.txt" in listing.stdout and "6 B" in listing.stdout
    assert "output/sub/up" in listing.stdout and "-> ../hello.txt" in listing.stdout
    assert "model/m.bin" in listing.stdout
    totals = dtrun("artifacts", "-t", run_name(result), cwd=project)
    assert totals.code == 0
    rows = [line.split() for line in totals.stdout.splitlines()[1:]]
    assert sorted((r[1], r[2], r[3]) for r in rows) == [("download", "output", "3"), ("train", "model", "1")]

    target = tmp_path / "dl"
    got = dtrun("artifacts", run_name(result), "--output", str(target), cwd=project)
    assert got.code == 0, got.output
    assert (target / "output" / "hello.txt").read_text() == "hello\n"
    assert (target / "output" / "hello.txt").stat().st_mode & 0o7777 == 0o750
    # A download keeps permission bits only: a job's setuid bit (kept inside jobs, see above) never lands
    # in the folder of whoever downloads, root included.
    assert (target / "output" / "tool.sh").stat().st_mode & 0o7777 == 0o755
    assert os.readlink(target / "output" / "sub" / "up") == "../hello.txt"
    assert os.readlink(target / "output" / "dirlink") == "sub"
    assert (target / "output" / "empty").is_dir() and not list((target / "output" / "empty").iterdir())
    assert (target / "model" / "m.bin").read_text() == "hello\n"


def test_the_api_path_gives_the_same_artifact_as_the_local_fast_path(
        make_project: Any, dtrun: DtrunRunner) -> None:
    project = make_project(workflows(download()))
    fast = dtrun("run", "download", cwd=project)
    slow = dtrun("run", "download", cwd=project, env={"DTRUN_NO_LOCAL_VOLUMES": "1"})
    assert fast.code == 0 and slow.code == 0, fast.output + slow.output
    digests = {j["artifacts"][0]["digest"] for j in jobs_of(dtrun.store).values()}
    # Same names, modes, links and bytes -> the same content key (mtimes are not part of it).
    assert len(digests) == 1


def run_name(result: Any) -> str:
    for line in result.stderr.splitlines():
        if line.startswith("run ") and ":" in line:
            return str(line.split()[1].rstrip(":"))
    raise AssertionError(result.output)


def test_deps_are_materialised_once_and_reused(make_project: Any, dtrun: DtrunRunner, docker_client: Any) -> None:
    project = make_project(workflows(download(), wf("train", ["cat output/hello.txt"], "deps: [':data']")))
    assert dtrun("run", "download", "-t", "data", cwd=project).code == 0
    first = dtrun("run", "train", cwd=project)
    second = dtrun("run", "train", "--no-cache", cwd=project)  # a second container, not a cache hit
    assert first.code == 0 and second.code == 0, first.output + second.output
    assert first.stdout.count("hello") == 1 and second.stdout.count("hello") == 1
    volumes = docker_client.volumes.list(filters={"label": f"dev.dtrun.store={dtrun.store_label}"})
    art = [v for v in volumes if v.name.startswith("dtrun-art-")]
    assert len(art) == 1, [v.name for v in volumes]
    fills = docker_client.containers.list(all=True, filters={"name": f"{art[0].name}-fill"})
    assert fills == []


HOSTILE = {
    "absolute symlink": ("ln -s /etc/passwd output/pw", "symlink to an absolute path (/etc/passwd)"),
    "symlink outside": ("ln -s ../../../etc output/up", "symlink pointing outside the artifact"),
    "hard link": ("ln output/ok.txt output/hard", "hard link"),
    "device": ("mknod output/null c 1 3", "device or special file"),
    "fifo": ("mkfifo output/pipe", "device or special file"),
}


@pytest.mark.parametrize("local", [True, False], ids=["volume-read-directly", "docker-api"])
def test_hostile_outputs_planted_by_a_container_are_refused_by_name(
        make_project: Any, dtrun: DtrunRunner, local: bool) -> None:
    commands = ["mkdir -p output", "echo ok > output/ok.txt", *(c for c, _ in HOSTILE.values())]
    project = make_project(workflows(wf("evil", commands, "artifacts: [output]")))
    env = {} if local else {"DTRUN_NO_LOCAL_VOLUMES": "1"}
    result = dtrun("run", "evil", cwd=project, env=env)
    assert result.code != 0
    assert "Traceback" not in result.output
    for _, why in HOSTILE.values():
        assert why in result.stderr, (why, result.stderr)
    for name in ("pw", "up", "null", "pipe"):
        assert f"output/{name}:" in result.stderr
    # Of two names for one inode, the second one met is the hard link (the order depends on the reader).
    assert "output/hard: hard link" in result.stderr or "output/ok.txt: hard link" in result.stderr
    (job,) = jobs_of(dtrun.store).values()
    assert job["state"] == "FAILED" and "refused" in job["message"]
    assert job["artifacts"] == []
    # Nothing of the refused artifact reached the store: no tar, no manifest, no temporary file.
    leftovers = [p for p in dtrun.store.rglob("artifacts/*")]
    assert leftovers == []


def test_an_artifact_that_is_a_symlink_to_the_host_is_refused(make_project: Any, dtrun: DtrunRunner) -> None:
    project = make_project(workflows(wf("evil", ["ln -s /etc output"], "artifacts: [output]")))
    result = dtrun("run", "evil", cwd=project)
    assert result.code != 0 and "Traceback" not in result.output
    assert "refused" in result.stderr
    assert list(dtrun.store.rglob("artifacts/*")) == []


def test_absolute_artifact_paths_are_saved_and_mounted_there(make_project: Any, dtrun: DtrunRunner,
                                                             tmp_path: Path) -> None:
    project = make_project(workflows(
        wf("make", ["mkdir -p /out/models", "echo w > /out/models/w.txt"], "artifacts: [/out/models]"),
        wf("use", ["cat /out/models/w.txt"], "depends-on: [make]")))
    result = dtrun("run", "use", cwd=project)
    assert result.code == 0, result.output
    assert result.stdout.strip().endswith("w")
    got = dtrun("artifacts", run_name(result), "-o", str(tmp_path / "dl"), cwd=project)
    assert got.code == 0, got.output
    assert (tmp_path / "dl" / "out" / "models" / "w.txt").read_text() == "w\n"


def test_mount_artifacts_are_checkpointed_while_the_job_runs(make_project: Any, dtrun: DtrunRunner) -> None:
    """Kill the client mid-job: the checkpoint saved while it ran is in the store, complete."""
    project = make_project(workflows(wf("train", [
        "mkdir -p ckpt", "echo step1 > ckpt/state", "sleep 60"], "artifacts:\n  - path: ckpt\n    mount: true")))
    env = {**dtrun.env, "DTRUN_CHECKPOINT_INTERVAL": "0.3"}
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", "run", "train"], cwd=project, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        manifests: list[Path] = []
        while time.time() < deadline and not manifests:
            manifests = list(dtrun.store.rglob("artifacts/*.json"))
            time.sleep(0.2)
        assert manifests, "no checkpoint was saved while the job ran"
    finally:
        proc.kill()
        proc.wait()
    manifest = json.loads(manifests[0].read_text())
    assert [f["path"] for f in manifest["files"]] == ["state"]
    job = next(iter(jobs_of(dtrun.store)))
    listing = dtrun("artifacts", job, cwd=project)
    assert "ckpt/state" in listing.stdout, listing.output


def test_concurrent_jobs_materialise_a_dep_once(tmp_path: Path, docker_client: Any, dtrun_client: Any) -> None:
    """Two clients mounting the same new dep at once: one copies, the other waits and reuses it."""
    import threading

    from dtrun.backends.docker import DockerBackend
    from dtrun.engine.artifacts import InputArtifact, input_volume, mount_inputs, upload_folder
    from dtrun.store import Store
    from tests.conftest import SESSION, remove_labelled

    data = tmp_path / "data"
    data.mkdir()
    (data / "x.bin").write_bytes(os.urandom(3 << 20))
    (data / "id").write_text(uuid.uuid4().hex)
    store = Store(str(tmp_path / "store"), "local/concurrency")
    record = upload_folder(store, "j1", data, "data", "/workspace/data")
    item = InputArtifact(repo=store.repo, job_id="j1", record=record)
    labels = {"dev.dtrun.store": f"test-{SESSION}-conc"}
    backend = DockerBackend(dtrun_client, "unix:///var/run/docker.sock")
    copied: list[bool] = []
    errors: list[BaseException] = []
    real = backend.materialize_once

    def counting(*args: Any, **kwargs: Any) -> bool:
        result = real(*args, **kwargs)
        copied.append(result)
        return result

    backend.materialize_once = counting  # type: ignore[method-assign]

    def mount() -> None:
        try:
            mount_inputs(backend, store, [item], BUSYBOX_IMAGE, labels)
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=mount) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(copied) == [False, False, True]
        out = docker_client.containers.run(
            BUSYBOX_IMAGE, ["sh", "-c", "cat /d/id; echo; wc -c < /d/x.bin"], entrypoint=[], remove=True,
            labels=labels, volumes={input_volume(item): {"bind": "/d", "mode": "ro"}})
        assert out.decode().split() == [(data / "id").read_text(), str(3 << 20)]
    finally:
        remove_labelled("dev.dtrun.store", labels["dev.dtrun.store"])


def test_an_artifact_holding_a_mounted_dep_includes_it(make_project: Any, dtrun: DtrunRunner) -> None:
    """The fast path sees only the volume's own folder; with a dep mounted inside, the daemon's view wins."""
    project = make_project(workflows(
        wf("raw", ["mkdir -p data/raw", f"echo {uuid.uuid4().hex} > data/raw/r.txt"], "artifacts: [data/raw]"),
        wf("prep", ["echo extra > data/extra.txt"], "depends-on: [raw]\nartifacts: [data]")))
    result = dtrun("run", "prep", cwd=project)
    assert result.code == 0, result.output
    listing = dtrun("artifacts", run_name(result), cwd=project).stdout
    prep_files = sorted(line.split()[2] for line in listing.splitlines()[1:] if line.split()[1] == "prep")
    assert prep_files == ["data/extra.txt", "data/raw/r.txt"], listing
