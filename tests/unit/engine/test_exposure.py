"""A running job's ports and dev-environment app: reported once the app answers, kept for this user
in 0600 files that go when the job ends, and shown again by `dtrun status`."""

from __future__ import annotations

import http.server
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dtrun.backends.base import PublishedPort
from dtrun.engine import addresses, exposure
from dtrun.images.spec import ImageSpec
from dtrun.plan import Job
from dtrun.providers import devenv
from dtrun.spec.models import Resources
from dtrun.store import JobRecord, State


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path))
    return tmp_path


def free() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def late_server() -> Iterator[tuple[int, Callable[[], None]]]:
    """A port where an HTTP server starts only when asked (an app still starting)."""
    port = free()
    servers: list[http.server.HTTPServer] = []

    def start() -> None:
        server = http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()

    yield port, start
    for server in servers:
        server.shutdown()
        server.server_close()


class Backend:
    def __init__(self, ports: list[PublishedPort]) -> None:
        self.ports = ports
        self.closed = 0

    def published_ports(self, handle: Any) -> list[PublishedPort]:
        return self.ports

    def forward_ports(self, ports: list[PublishedPort]) -> tuple[list[PublishedPort], Callable[[], None]]:
        def close() -> None:
            self.closed += 1

        return ports, close

    def get(self, name: str) -> Any:
        return object()


def lab_job(user_ports: int = 0) -> Job:
    return Job(workflow="ide", provider="lab", image=ImageSpec("lab"), command=None, entrypoint=None,
               env=devenv.app_env("lab", user_ports), working_dir="/workspace", artifacts=[],
               resources=Resources(), ports=user_ports + 1)


def wait_for(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_the_url_is_said_once_the_app_answers_and_the_files_go_with_the_job(
        late_server: tuple[int, Callable[[], None]], data_dir: Path) -> None:
    port, start = late_server
    job = lab_job()
    masked: list[str] = []
    env = exposure.start_token(job, "job1", masked)
    token = env[devenv.TOKEN_ENV]
    assert masked == [token]
    said: list[str] = []
    backend = Backend([PublishedPort("PORT_0", 8000, port, f"127.0.0.1:{port}")])
    exposed = exposure.Exposure(backend, object(), job, "job1", said.append)  # type: ignore[arg-type]
    assert said == [f"  PORT_0 (8000 in the job) -> http://127.0.0.1:{port}"]
    time.sleep(0.5)
    assert len(said) == 1  # nothing answers yet: no URL
    start()
    wait_for(lambda: len(said) == 2)
    url = f"http://127.0.0.1:{port}/lab?token={token}"
    assert said[1] == f"  lab: {url}"
    saved = devenv.load_urls("job1")
    assert saved == {"PORT_0": f"http://127.0.0.1:{port}", "lab": url}
    files = sorted((data_dir / "devenv").iterdir())
    assert [f.name for f in files] == ["job1.token", "job1.urls.json"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    exposed.close()
    assert backend.closed == 1 and not [f for f in files if f.exists()]


def test_an_app_that_never_answers_is_not_announced() -> None:
    port = free()
    job = lab_job()
    exposure.start_token(job, "job2", [])
    said: list[str] = []
    backend = Backend([PublishedPort("PORT_0", 8000, port, f"127.0.0.1:{port}")])
    exposed = exposure.Exposure(backend, object(), job, "job2", said.append)  # type: ignore[arg-type]
    time.sleep(0.5)
    exposed.close()
    assert len(said) == 1 and exposed.watcher is not None and not exposed.watcher.is_alive()


def test_other_jobs_get_no_token() -> None:
    job = Job(workflow="w", provider="bash", image=ImageSpec("bash"), command=None, entrypoint=None, env={},
              working_dir="/workspace", artifacts=[], resources=Resources())
    masked: list[str] = []
    assert exposure.start_token(job, "job3", masked) == {} and masked == []


def test_status_urls_come_from_the_users_file_else_from_the_backend_without_the_token() -> None:
    record = JobRecord(id="job4", run="r", workflow="ide", provider="lab", state=State.RUNNING, container="c")
    ports = [PublishedPort("PORT_0", 8000, 49001, "127.0.0.1:49001"),
             PublishedPort("PORT_1", 8001, 49002, "127.0.0.1:49002"),
             PublishedPort("PORT_2", 8002, 49003, "127.0.0.1:49003", reachable=False)]
    backend = Backend(ports)
    without = addresses.job_urls(lambda: backend, record)  # type: ignore[arg-type,return-value]
    assert without == {"PORT_0": "http://127.0.0.1:49001", "PORT_1": "http://127.0.0.1:49002",
                       "lab": "http://127.0.0.1:49002/lab"}
    devenv.save_token("job4", "tok")
    with_token = addresses.job_urls(lambda: backend, record)  # type: ignore[arg-type,return-value]
    assert with_token["lab"] == "http://127.0.0.1:49002/lab?token=tok"
    devenv.save_urls("job4", {"lab": "http://127.0.0.1:41000/lab?token=tok"})  # what the attached process saw
    assert addresses.job_urls(lambda: backend, record) == {  # type: ignore[arg-type,return-value]
        "lab": "http://127.0.0.1:41000/lab?token=tok"}
    record.state = State.STOPPED
    assert addresses.job_urls(lambda: backend, record) == {}  # type: ignore[arg-type,return-value]


def test_status_shows_urls_under_the_job() -> None:
    from dtrun.cli.status_cmd import render
    from dtrun.store import RunRecord

    run = RunRecord(name="r", repo="x", workflow="ide")
    job = JobRecord(id="job5", run="r", workflow="ide", provider="code", state=State.RUNNING)
    text = render([(run, [job])], lambda j: j.state.value,
                  lambda j: {"code": "http://127.0.0.1:1/", "code password": "pw"})
    lines = text.splitlines()
    assert lines[2].split()[0] == "job5" and lines[3:] == ["    code: http://127.0.0.1:1/", "    code password: pw"]
