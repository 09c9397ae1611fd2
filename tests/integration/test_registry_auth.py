"""`registry_auth` (dstack's docker provider) pulls a private image from a real registry on loopback that
requires a password (Debian's docker-registry with htpasswd); the password reaches no record, log or
terminal (issue 12)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BUSYBOX_IMAGE, SESSION, DtrunRunner

ROOT = Path(__file__).resolve().parents[2]
PORT = int(os.environ.get("DTRUN_TEST_AUTH_REGISTRY_PORT", "5068"))
USER = "dtrun-tester"
#: A test registry's password, not a secret; what matters is that dtrun never shows it.
PASSWORD = "registry-pw-7c1f0e"

WORKFLOWS = """
workflows:
  - name: private
    image: {ref}
    registry_auth:
      username: {user}
      password: ${{{{ secrets.REGISTRY_PASSWORD }}}}
    commands:
      - echo "ran $(cat /etc/private-marker)"
"""


@pytest.fixture(scope="module")
def registry() -> str:
    proc = subprocess.run([str(ROOT / "scripts" / "start-registry"), str(PORT)], input=PASSWORD + "\n",
                          capture_output=True, text=True, timeout=300, env={**os.environ, "DTRUN_REGISTRY_USER": USER})
    if proc.returncode != 0:
        pytest.fail(f"scripts/start-registry {PORT} failed: {proc.stderr}")
    return f"127.0.0.1:{PORT}"


@pytest.fixture
def private_image(registry: str, docker_client: Any, tmp_path: Path) -> Iterator[str]:
    """An image only the registry has (a marker file on busybox), pushed with the password."""
    import io
    import tarfile

    ref = f"{registry}/dtrun-test-{SESSION}/private:v1"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = f"FROM {BUSYBOX_IMAGE}\nRUN echo {SESSION} > /etc/private-marker\n".encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    docker_client.images.build(fileobj=context, custom_context=True, tag=ref, rm=True,
                               labels={"dev.dtrun.test": SESSION})
    auth = {"username": USER, "password": PASSWORD}
    for line in docker_client.images.push(ref, auth_config=auth, stream=True, decode=True):
        assert "error" not in line, line
    docker_client.images.remove(ref)
    yield ref
    with contextlib.suppress(Exception):  # already gone: nothing of ours left
        docker_client.images.remove(ref, force=True)


def test_registry_auth_pulls_a_private_image_and_never_shows_the_password(
        private_image: str, docker_client: Any, dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    import docker.errors

    with pytest.raises(docker.errors.APIError):  # the registry really requires the password
        docker_client.images.pull(private_image)
    project = make_project({".dstack/workflows.yaml": WORKFLOWS.format(ref=private_image, user=USER)})

    missing = dtrun("run", "private", cwd=project)
    assert missing.code != 0 and "Traceback" not in missing.output, missing.output
    assert "workflow 'private': registry_auth: secret 'REGISTRY_PASSWORD' is not set" in missing.stderr

    assert dtrun("secrets", "add", "REGISTRY_PASSWORD", cwd=project, input="wrong-password\n").code == 0
    refused = dtrun("run", "private", cwd=project)
    assert refused.code != 0 and "Traceback" not in refused.output, refused.output
    assert f"workflow 'private': pulling {private_image} failed" in refused.stderr
    assert "hint: check `registry_auth`" in refused.stderr and "wrong-password" not in refused.output

    assert dtrun("secrets", "add", "REGISTRY_PASSWORD", cwd=project, input=PASSWORD + "\n").code == 0
    result = dtrun("run", "private", cwd=project)
    assert result.code == 0, result.output
    assert result.stdout == f"ran {SESSION}\n"
    assert f"pulling {private_image} as {USER} (registry_auth)" in result.stderr
    assert PASSWORD not in result.output
    for path in dtrun.store.rglob("*"):  # records, logs, tars: the password is in none of them
        assert not path.is_file() or PASSWORD.encode() not in path.read_bytes(), path
