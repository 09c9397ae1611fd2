"""The legacy builder's context honours `.dockerignore` as the docker CLI's does (issue: a big `data/` in a
`runs.using: docker` action folder was uploaded to the daemon, an ignored secret reached `COPY .`).

A real flow builds its Dockerfile action through the Engine API (`DTRUN_BUILDER=legacy`, as on a daemon
without BuildKit); the image's `COPY . /ctx` then shows exactly the files sent. The same folder built by
the docker CLI's own legacy builder (`DOCKER_BUILDKIT=0 docker build`) must show the same list.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BUSYBOX_IMAGE, SESSION, DtrunRunner, write_files

IGNORE = """\
# big data stays home, but one small file of it is needed
data
!data/keep.txt
/secret.env
**/*.tmp
Dockerfile
.dockerignore
  # indented: a pattern (matching nothing), not a comment
"""

#: what `COPY . /ctx` sees of the folder below when the docker CLI sends it: `data/` only for its
#: exception, no secret, no *.tmp at any depth (`src/deep` stays, empty). The Dockerfile and .dockerignore
#: are sent although matched (else the daemon could not read the Dockerfile: the build would fail), and
#: the daemon drops them from the context since they are matched.
SENT = [".", "./action-datatorch.yaml", "./data", "./data/keep.txt", "./notes.md", "./src", "./src/a.py",
        "./src/deep"]


def make_action(folder: Path) -> None:
    write_files(folder, {
        "action-datatorch.yaml": f"""
            name: ctx-{SESSION}
            runs:
              using: docker
              dockerfile: Dockerfile
            """,
        "Dockerfile": f"""
            FROM {BUSYBOX_IMAGE}
            COPY . /ctx
            ENTRYPOINT ["sh", "-c", "cd /ctx && find . | sort | sed 's/^/sent: /'"]
            """,
        ".dockerignore": IGNORE,
        "data/keep.txt": "needed\n",
        "data/sub/more.txt": "not needed\n",
        "secret.env": "TOKEN=do-not-ship\n",
        "src/a.py": "print('a')\n",
        "src/deep/b.tmp": "scratch\n",
        "c.tmp": "scratch\n",
        "notes.md": "notes\n",
    })
    with open(folder / "data" / "big.bin", "wb") as big:  # sparse: 64 MiB that costs no disk here
        big.truncate(64 << 20)


@pytest.fixture
def built_images(docker_client: Any) -> Iterator[list[str]]:
    """Images the test built, removed after it, passed or not (the action's, named for the session, too:
    its tag is a hash of what it was built from, so one left over would be taken as built)."""
    made: list[str] = []
    yield made
    for image in docker_client.images.list(name=f"dtrun-action/ctx-{SESSION}"):
        made += image.tags
    for image in made:
        with contextlib.suppress(Exception):
            docker_client.images.remove(image, force=True)


def test_a_dockerfile_action_built_by_the_legacy_builder_gets_only_what_dockerignore_lets_through(
        tmp_path: Path, dtrun: DtrunRunner, docker_client: Any, built_images: list[str]) -> None:
    make_action(tmp_path / "actions" / "ctx")
    write_files(tmp_path, {"flow.yaml": """
        name: ctx
        jobs:
          j:
            steps:
              - id: a
                action: ./actions/ctx
        """})
    result = dtrun("flow", "run", str(tmp_path / "flow.yaml"), env={"DTRUN_BUILDER": "legacy"})
    assert result.code == 0, result.output
    listed = [line.split("sent: ", 1)[1] for line in result.output.splitlines() if "] sent: " in line]
    # an action's context is its files (dtrun copies them into a build folder): a folder left empty by
    # the ignored files in it is not carried, as no empty folder of an action ever was
    assert listed == [p for p in SENT if p != "./src/deep"], result.output


@pytest.mark.skipif(not shutil.which("docker"), reason="needs the docker CLI")
def test_the_docker_clis_own_legacy_builder_sends_the_same_files(
        tmp_path: Path, docker_client: Any, built_images: list[str]) -> None:
    """The expected list above is the CLI's, not a guess: its legacy builder sends exactly those files."""
    folder = tmp_path / "ctx"
    make_action(folder)
    tag = f"dtrun-test-{SESSION}/ctx-cli:latest"
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    subprocess.run(["docker", "build", "-q", "-t", tag, str(folder)], env=env, check=True, capture_output=True)
    built_images.append(tag)
    out = docker_client.containers.run(tag, remove=True, network_disabled=True).decode()
    assert [line.removeprefix("sent: ") for line in out.splitlines()] == SENT


def test_the_dtrun_legacy_build_path_leaves_out_what_is_ignored(
        tmp_path: Path, dtrun_client: Any, docker_client: Any, built_images: list[str]) -> None:
    """Through the backend's `legacy_build` directly (what generated images use when BuildKit is not
    usable): the same folder, the same files sent."""
    from dtrun.backends.docker import DockerBackend

    folder = tmp_path / "ctx"
    make_action(folder)
    tag = f"dtrun-test-{SESSION}/ctx-api:latest"
    backend = DockerBackend(dtrun_client, "unix:///var/run/docker.sock")
    messages = list(backend.legacy_build(folder, tag, {"dev.dtrun.test": SESSION}, {}))
    built_images.append(tag)
    assert not [m for m in messages if "error" in m], messages
    out = docker_client.containers.run(tag, remove=True, network_disabled=True).decode()
    assert [line.removeprefix("sent: ") for line in out.splitlines()] == SENT
