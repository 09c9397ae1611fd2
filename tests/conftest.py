"""Shared fixtures: throwaway git projects, the `dtrun` command as a user types it, and cleanup.

Everything a test creates on the shared Docker daemon carries the label `dev.dtrun.store` of that
test's own store, and only that is removed afterwards (never a prune: the daemon is shared).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SESSION = os.environ.get("DTRUN_TEST_SESSION") or uuid.uuid4().hex[:8]
#: Volumes that outlive runs on purpose (per-host caches that `dtrun volumes prune` removes): dep artifacts,
#: CA bundles, `cache:` paths and a repository's code. A run leaves nothing else behind.
HOST_CACHES = ("dtrun-art-", "dtrun-ca-", "dtrun-cache-", "dtrun-code-")
BASE_IMAGE = os.environ.get("DTRUN_BASE_IMAGE", "dtrun-local/base:bookworm")
BUSYBOX_IMAGE = os.environ.get("DTRUN_TEST_BUSYBOX", "dtrun-local/busybox:latest")


def write_files(root: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip("\n"))


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True,
                          env=env).stdout


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """A git repository with the given files, committed unless `commit=False`."""
    counter = iter(range(1000))

    def make(files: dict[str, str], *, commit: bool = True, name: str | None = None) -> Path:
        root = tmp_path / (name or f"project{next(counter)}")
        root.mkdir(parents=True)
        git(root, "init", "-q", "-b", "main")
        write_files(root, files)
        if commit:
            git(root, "add", "-A")
            git(root, "commit", "-q", "-m", "initial")
        return root

    return make


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class DtrunRunner:
    """Runs `dtrun` in a subprocess with a private store, config and data folder."""

    env: dict[str, str]
    store: Path

    def __call__(self, *args: str, cwd: Path | None = None, input: str | None = None,
                 env: dict[str, str] | None = None, timeout: float = 600) -> Result:
        proc = subprocess.run([sys.executable, "-m", "dtrun", *args], cwd=cwd, input=input, text=True,
                              capture_output=True, env={**self.env, **(env or {})}, timeout=timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    @property
    def store_label(self) -> str:
        return hashlib.sha256(str(self.store).encode()).hexdigest()[:12]

    def await_log(self, run: str, text: str, cwd: Path, timeout: float = 300) -> str:
        """`dtrun logs RUN` once it shows `text` (polled each second); the test fails with the log if it
        never does within `timeout` seconds."""
        import time

        deadline = time.monotonic() + timeout
        while text not in (output := self("logs", run, cwd=cwd).output):
            assert time.monotonic() < deadline, f"{text!r} never came; the log:\n{output}"
            time.sleep(1)
        return output


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared across the session so base-image probes and builder probes are paid once."""
    return tmp_path_factory.mktemp("dtrun-data")


@pytest.fixture(scope="session", autouse=True)
def _client_data_in_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """dtrun code run in the tests' own process keeps its client caches (parsed YAML, image records) in a
    folder of the session, not in the home folder of whoever runs the tests."""
    before = os.environ.get("DTRUN_DATA_DIR")
    os.environ.setdefault("DTRUN_DATA_DIR", str(tmp_path_factory.mktemp("dtrun-client-data")))
    yield
    if before is None:
        os.environ.pop("DTRUN_DATA_DIR", None)


@pytest.fixture
def dtrun(tmp_path: Path, data_dir: Path) -> Iterator[DtrunRunner]:
    store = tmp_path / "store"
    env = {**os.environ, "DTRUN_STORE": str(store), "DTRUN_DATA_DIR": str(data_dir),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "DTRUN_BASE_IMAGE": BASE_IMAGE, "NO_COLOR": "1",
           "COLUMNS": "200"}
    env.pop("DTRUN_CONFIG", None)
    env.pop("DTRUN_HOST", None)
    runner = DtrunRunner(env=env, store=store)
    yield runner
    remove_labelled("dev.dtrun.store", runner.store_label)


def job_volumes(client: Any, store_label: str) -> list[str]:
    """The volumes a store's jobs left on the daemon; its repositories' code volumes (`dtrun-code-*`) stay
    on purpose (issue 19: the next run sends only what changed) and are not counted."""
    found = client.volumes.list(filters={"label": f"dev.dtrun.store={store_label}"})
    return sorted(v.name for v in found if not v.name.startswith("dtrun-code-"))


def remove_labelled(key: str, value: str) -> None:
    """Remove this test's containers and volumes (and only those) from the shared daemon."""
    try:
        import docker
    except ImportError:
        return
    try:
        client = docker.from_env()
        selector = {"label": f"{key}={value}"}
        anchors = {"label": f"{key.replace('dev.dtrun.', 'dev.dtrun.anchor.', 1)}={value}"}  # code volumes
        for container in [*client.containers.list(all=True, filters=selector),
                          *client.containers.list(all=True, filters=anchors)]:
            container.remove(force=True)
        for volume in client.volumes.list(filters=selector):
            volume.remove(force=True)
        for network in client.networks.list(filters=selector):  # multi-node jobs' own networks
            network.remove()
    except Exception:  # cleanup must never mask the test's own result
        pass


@pytest.fixture(scope="session")
def docker_client() -> Any:
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        pytest.fail(f"integration tests need a Docker daemon (run `make docker`): {exc}")
    return client


@pytest.fixture(scope="session")
def dtrun_client(docker_client: Any) -> Any:
    """dtrun's own Engine API client on the same daemon, for tests that hand a client to dtrun's code
    (docker-py stays the tests' own tool for fixtures and inspection)."""
    from dtrun.backends.docker.connection import connect

    return connect()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(part in str(item.fspath) for part in ("/integration/", "/e2e/", "/browser/")):
            item.add_marker(pytest.mark.docker)
