"""The Docker backend connects on first use (issue 19): building it asks nothing of the daemon, threads
that need it at once connect once, a daemon that does not answer is reported at that first use."""

from __future__ import annotations

import threading
import time

import pytest

from dtrun.backends.docker import DockerBackend
from dtrun.errors import DockerUnavailable


class Connector:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self) -> object:
        self.calls += 1
        time.sleep(0.05)  # long enough for the other threads to arrive meanwhile
        if self.fail:
            raise DockerUnavailable("no Docker daemon answers at unix:///nowhere")
        return Daemon()


class Daemon:
    """A client whose `/info` is counted."""

    def __init__(self) -> None:
        self.infos = 0

    def info(self) -> dict[str, object]:
        self.infos += 1
        return {"NCPU": 2}


def test_the_backend_connects_once_on_first_use() -> None:
    connect = Connector()
    backend = DockerBackend(host="unix:///var/run/docker.sock", connect=connect)
    assert (backend.host, backend.connected, connect.calls) == ("unix:///var/run/docker.sock", False, 0)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(backend.client)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert connect.calls == 1 and backend.connected and len({id(c) for c in seen}) == 1


def test_connect_soon_overlaps_and_its_failure_is_raised_at_first_use() -> None:
    connect = Connector()
    backend = DockerBackend(host="unix:///x", connect=connect)
    backend.connect_soon()
    client = backend.client  # waits for the connection under way rather than starting another
    assert client is not None and connect.calls == 1
    deadline = time.monotonic() + 5
    while client.infos < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert backend.host_cpus() == 2 and client.infos == 1  # asked on the connecting thread, once

    failing = Connector(fail=True)
    backend = DockerBackend(host="unix:///nowhere", connect=failing)
    backend.connect_soon()  # says nothing
    while failing.calls < 1:
        time.sleep(0.01)
    with pytest.raises(DockerUnavailable, match="no Docker daemon answers"):
        backend.client  # noqa: B018
    assert not backend.connected and failing.calls == 2  # tried again, and reported, where it is used
