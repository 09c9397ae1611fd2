"""A run whose jobs are all cache hits neither reaches the Docker daemon nor imports docker-py (issue 19).

The daemon is reached through a symlink to its socket; once the first run has recorded the jobs and
their images, the symlink is removed, so any attempt to connect fails. The cached re-run must still
succeed; a run that has to start a container then says clearly that no daemon answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dtrun.backends.docker.endpoint import resolve
from dtrun.errors import DockerUnavailable
from tests.conftest import BASE_IMAGE, BUSYBOX_IMAGE, SESSION, DtrunRunner, git

WORKFLOWS = """
workflows:
  - name: prep
    provider: bash
    commands: ["mkdir -p out", "cat data.txt > out/data.txt", "echo prepared"]
    artifacts: [{path: out}]
  - name: train
    provider: bash
    depends-on: [prep]
    commands: ["mkdir -p model", "cat out/data.txt > model/m.txt", "echo trained"]
    artifacts: [{path: model}]
  - name: wide
    provider: bash
    depends-on: [prep, side]
    commands: ["echo wide"]
  - name: side
    provider: bash
    commands: ["echo side"]
"""

# An image the workflow names by tag: the tag is this session's own, moved between runs like a `docker pull`
NAMED = f"dtrun-test-{SESSION}/named:1"
NAMED_WORKFLOWS = f"""
workflows:
  - name: use
    provider: docker
    image: {NAMED}
    commands: ["echo used"]
"""


IN_PROCESS = """
import sys
from dtrun.api import Session
session = Session()
result = session.run(sys.argv[1])
loaded = sorted(m for m in ("docker", "requests", "paramiko", "jinja2") if m in sys.modules)
print(result.exit_code, [j.state.value for j in result.jobs], session.backend.connected, loaded)
"""


def states(dtrun: DtrunRunner, root: Path, env: dict[str, str]) -> list[str]:
    runs = json.loads(dtrun("status", "--json", "--last", "1", cwd=root, env=env).stdout)
    return [j["state"] for j in runs[0]["jobs"]]


@pytest.fixture
def socket_link(tmp_path: Path) -> Path:
    endpoint = resolve(None)
    if endpoint.scheme != "unix":
        pytest.skip(f"the daemon here is not on a unix socket ({endpoint.url})")
    link = tmp_path / "sock" / "docker.sock"
    link.parent.mkdir()
    link.symlink_to(endpoint.url.split("://", 1)[1])
    return link


def test_a_fully_cached_run_needs_no_daemon(dtrun: DtrunRunner, make_project: Callable[..., Path],
                                            socket_link: Path) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS, "data.txt": "v1\n"})
    env = {"DOCKER_HOST": f"unix://{socket_link}"}
    for workflow in ("train", "wide"):  # a chain and a fan-in
        first = dtrun("run", workflow, cwd=root, env=env)
        assert first.code == 0, first.output
    socket_link.unlink()  # from here on, connecting fails

    again = dtrun("run", "train", cwd=root, env=env)
    assert again.code == 0, again.output
    assert states(dtrun, root, env) == ["CACHED", "CACHED"]
    assert again.stdout == "prepared\ntrained\n"  # the reused jobs' output, replayed from the store
    wide = dtrun("run", "wide", cwd=root, env=env)  # independent jobs: their parallel limit is not asked for
    assert wide.code == 0 and states(dtrun, root, env) == ["CACHED", "CACHED", "CACHED"], wide.output

    # in one process: docker-py (and requests, paramiko, jinja2) never imported, the backend never connected
    child = subprocess.run([sys.executable, "-c", IN_PROCESS, "train"], cwd=root, capture_output=True, text=True,
                           env={**dtrun.env, **env})
    assert child.stdout.strip() == "0 ['CACHED', 'CACHED'] False []", child.stdout + child.stderr

    # a job that has to run does need the daemon: a clear error, no traceback
    (root / "data.txt").write_text("v2\n")
    git(root, "commit", "-qam", "v2")
    changed = dtrun("run", "train", cwd=root, env=env)
    assert changed.code == DockerUnavailable.exit_code, changed.output
    assert f"no Docker daemon answers at unix://{socket_link} (from DOCKER_HOST)" in changed.stderr
    assert "Traceback" not in changed.output


def test_a_detached_run_asks_the_host_before_it_returns(dtrun: DtrunRunner, make_project: Callable[..., Path],
                                                       tmp_path: Path) -> None:
    """`dtrun run -d` with no daemon: the error here, exit non-zero, and no run left behind for a background
    process to fail later, unseen."""
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS, "data.txt": "v1\n"})
    env = {"DOCKER_HOST": f"unix://{tmp_path / 'none' / 'docker.sock'}"}
    result = dtrun("run", "train", "-d", cwd=root, env=env)
    assert result.code == DockerUnavailable.exit_code, result.output
    assert "no Docker daemon answers at unix://" in result.stderr and "Traceback" not in result.output
    assert "goes on in the background" not in result.output
    assert json.loads(dtrun("status", "--json", cwd=root, env=env).stdout) == []


def test_a_record_of_an_image_rebuilt_since_gives_a_miss(dtrun: DtrunRunner, make_project: Callable[..., Path],
                                                         tmp_path: Path) -> None:
    """The record holds the image id this client last saw; a run that finds another id under the tag
    (here: the record says an older image) computes another key, so the job runs rather than reusing."""
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS, "data.txt": "v1\n"})
    env = {"DTRUN_DATA_DIR": str(tmp_path / "data")}  # a record of this test's own
    assert dtrun("run", "train", cwd=root, env=env).code == 0
    record = tmp_path / "data" / "cache" / "image-tags.json"
    entries = json.loads(record.read_text())
    assert entries
    record.write_text(json.dumps({k: {**v, "id": "sha256:" + "0" * 64} for k, v in entries.items()}))
    again = dtrun("run", "train", cwd=root, env=env)
    assert again.code == 0, again.output
    assert states(dtrun, root, env) == ["CACHED", "CACHED"]  # the stale key misses; the daemon's id hits
    assert json.loads(record.read_text()) == entries  # the record is right again


def test_an_image_named_by_tag_that_moved_on_the_host_runs_again(
        dtrun: DtrunRunner, make_project: Callable[..., Path], docker_client: Any) -> None:
    """`docker pull` of a newer image under the same tag: the host, not the record, says which image the
    tag names, so the job runs on the new image instead of reusing the old one's result."""
    root = make_project({".dtrun/workflows.yaml": NAMED_WORKFLOWS})
    docker_client.images.get(BUSYBOX_IMAGE).tag(NAMED)
    try:
        assert dtrun("run", "use", cwd=root).code == 0
        assert dtrun("run", "use", cwd=root).code == 0
        assert states(dtrun, root, {}) == ["CACHED"]  # unchanged: reused
        docker_client.images.get(BASE_IMAGE).tag(NAMED)  # the tag now names another image
        moved = dtrun("run", "use", cwd=root)
        assert moved.code == 0 and moved.stdout == "used\n", moved.output
        assert states(dtrun, root, {}) == ["DONE"]
    finally:
        docker_client.images.remove(NAMED, noprune=True)
