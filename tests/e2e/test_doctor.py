"""`dtrun doctor` against real faults: a dead Docker socket, a base image that is nowhere, a store that
cannot be written, a registry port where nothing listens; and a healthy machine exits 0."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.conftest import BASE_IMAGE, SESSION, DtrunRunner
from tests.integration.test_publish import registry

__all__ = ["registry"]  # the fixture: the same loopback registry the publish tests start

STORE_FIX = ("fix: make it a folder this user can write, or point dtrun at another store: "
             "`dtrun config set store URL` or DTRUN_STORE")


def lines(output: str) -> dict[str, str]:
    """`name -> the whole line`, from doctor's `status  name  message` lines."""
    found = {}
    for line in output.splitlines():
        for name in ("docker", "buildkit", "base image", "gpus", "store", "ssh tunnel", "registry"):
            if line[6:].startswith(name + " "):
                found[name] = line
    return found


def test_a_healthy_machine(dtrun: DtrunRunner, tmp_path: Path) -> None:
    result = dtrun("doctor", cwd=tmp_path)
    assert result.code == 0, result.output
    found = lines(result.stdout)
    # the backend's checks first, then what every backend needs
    assert list(found) == ["docker", "buildkit", "base image", "gpus", "ssh tunnel", "store", "registry"]
    assert found["docker"].startswith("ok    docker      Docker ")
    assert "at unix:///var/run/docker.sock" in found["docker"] or "DOCKER_HOST" in found["docker"]
    assert found["base image"] == f"ok    base image  {BASE_IMAGE} (base_image setting) is on the Docker host"
    assert found["store"] == f"ok    store       {dtrun.store}: write, read and delete work"
    assert found["ssh tunnel"].startswith("skip  ssh tunnel  not used: the endpoint is ")
    assert not list(dtrun.store.glob(".dtrun-probe-*"))  # the probe object is removed again


def test_a_missing_daemon(dtrun: DtrunRunner, tmp_path: Path) -> None:
    dead = tmp_path / "dead.sock"
    result = dtrun("doctor", cwd=tmp_path, env={"DOCKER_HOST": f"unix://{dead}"})
    assert result.code == 1
    found = lines(result.stdout)
    assert found["docker"].startswith(
        f"FAIL  docker      no Docker daemon answers at unix://{dead} (from DOCKER_HOST): no such file or "
        "directory  fix: start Docker")  # the reason, not docker-py's ('Connection aborted.', ...) wrapper
    assert found["docker"].endswith(f"; DOCKER_HOST is unix://{dead}")
    assert "fix: start Docker" in found["docker"]
    assert found["base image"] == "skip  base image  needs the Docker daemon (see the docker line)"
    assert found["store"].startswith("ok    store")  # what does not need the daemon is still checked
    assert result.stderr.strip() == "1 problem: docker"
    assert "Traceback" not in result.output


def test_a_missing_base_image(dtrun: DtrunRunner, tmp_path: Path) -> None:
    missing = f"dtrun-local/missing-{SESSION}:none"
    result = dtrun("doctor", cwd=tmp_path, env={"DTRUN_BASE_IMAGE": missing})
    assert result.code == 1
    line = lines(result.stdout)["base image"]
    assert line.startswith(f"FAIL  base image  {missing} (base_image setting) is not on the Docker host and "
                           "cannot be pulled: ")
    assert line.endswith("fix: pull or load it on the Docker host, or point DTRUN_BASE_IMAGE (or `dtrun config set "
                         "base_image`) at an image that is there; `make base-image` in dtrun's checkout builds one "
                         "offline")
    assert result.stderr.strip() == "1 problem: base image"


def test_an_unwritable_store(dtrun: DtrunRunner, tmp_path: Path) -> None:
    occupied = tmp_path / "occupied"
    occupied.write_text("a file where the store's folder should be\n")  # unwritable even for root
    store = occupied / "store"
    result = dtrun("doctor", cwd=tmp_path, env={"DTRUN_STORE": str(store)})
    assert result.code == 1
    assert lines(result.stdout)["store"] == (f"FAIL  store       cannot write to the store {store}: Not a directory  "
                                             f"{STORE_FIX}")
    assert result.stderr.strip() == "1 problem: store"


def test_a_registry(dtrun: DtrunRunner, tmp_path: Path, registry: str) -> None:
    result = dtrun("doctor", "--registry", registry, cwd=tmp_path)
    assert result.code == 0, result.output
    assert lines(result.stdout)["registry"] == f"ok    registry    {registry} answers the registry API over http"

    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = dtrun("doctor", "--registry", f"127.0.0.1:{port}", cwd=tmp_path)
    assert result.code == 1
    assert lines(result.stdout)["registry"].startswith(
        f"FAIL  registry    no registry answers at 127.0.0.1:{port}: Connection refused  fix: check the address")
