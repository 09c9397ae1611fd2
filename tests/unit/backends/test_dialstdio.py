"""The dial-stdio socket with real local children instead of ssh: `cat` (an echo), a child that fails the
way ssh does, and the local `docker system dial-stdio` behind docker-py."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dtrun.backends.docker.dialstdio import DialStdio, dial_stdio_argv
from dtrun.backends.docker.sshtunnel import TunnelError


@pytest.fixture
def echo() -> Iterator[DialStdio]:
    dialer = DialStdio(["cat"])
    dialer.start()
    yield dialer
    dialer.close()


def _connect(dialer: DialStdio) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(30)
    conn.connect(str(dialer.socket))
    return conn


def _read_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _wait(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_argv_runs_dial_stdio_on_the_host_without_prompting() -> None:
    assert dial_stdio_argv("ssh://me@gpu-box:2222") == [
        "ssh", "-T", "-o", "BatchMode=yes", "-o", "ServerAliveInterval=30", "-p", "2222", "-l", "me",
        "--", "gpu-box", "docker", "system", "dial-stdio"]
    assert dial_stdio_argv("ssh://gpu-box")[-5:] == ["--", "gpu-box", "docker", "system", "dial-stdio"]
    assert "-p" not in dial_stdio_argv("ssh://gpu-box") and "-l" not in dial_stdio_argv("ssh://gpu-box")


def test_bytes_go_both_ways_until_the_client_closes(echo: DialStdio) -> None:
    payload = os.urandom(8 << 20)  # more than any pipe or socket buffer: written while being read back
    conn = _connect(echo)

    def write() -> None:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)

    writer = threading.Thread(target=write)
    writer.start()
    assert _read_all(conn) == payload  # the end: `cat` saw end of input, exited, and the connection closed
    writer.join()
    conn.close()
    _wait(lambda: echo.running() == 0)  # the child was reaped
    assert echo.started == 1 and echo.failure() is None


def test_each_connection_gets_its_own_child(echo: DialStdio) -> None:
    conns = [_connect(echo) for _ in range(3)]
    for i, conn in enumerate(conns):
        conn.sendall(f"connection {i}\n".encode())
    for i, conn in enumerate(conns):
        assert conn.recv(100) == f"connection {i}\n".encode()
    _wait(lambda: echo.running() == 3)  # counted once Popen returned, maybe after the child echoed
    assert echo.started == 3
    for conn in conns:
        conn.close()
    _wait(lambda: echo.running() == 0)


def test_a_failing_child_says_why(tmp_path: Path) -> None:
    dialer = DialStdio(["sh", "-c", "echo 'Host key verification failed.' >&2; exit 255"])
    dialer.start()
    try:
        conn = _connect(dialer)
        assert _read_all(conn) == b""  # the child exited: the client sees the connection end
        assert dialer.failure() == "Host key verification failed."
    finally:
        dialer.close()


def _echoing(echo: DialStdio) -> tuple[socket.socket, Any]:
    """A connection whose child echoed one byte back, and that child."""
    conn = _connect(echo)
    conn.sendall(b"x")
    assert conn.recv(1) == b"x"
    _wait(lambda: echo.running() == 1)
    [child] = echo._children
    return conn, child


def test_close_ends_the_children_and_removes_the_socket(echo: DialStdio) -> None:
    conn, child = _echoing(echo)
    echo.close()
    assert child.proc.returncode is not None  # ended, and waited for
    assert _read_all(conn) == b""
    assert not echo.folder.exists()
    with pytest.raises(OSError):
        _connect(echo)


def test_children_outlive_a_terminals_ctrl_c(echo: DialStdio) -> None:
    """Ctrl+C reaches the whole process group; dtrun stops its jobs through these children, so they stay."""
    conn, child = _echoing(echo)
    child.proc.send_signal(signal.SIGINT)
    conn.sendall(b"b")
    assert conn.recv(1) == b"b" and child.proc.poll() is None
    conn.close()


def test_a_missing_client_is_a_tunnel_error() -> None:
    dialer = DialStdio(["dtrun-no-such-ssh"])
    with pytest.raises(TunnelError, match="no dtrun-no-such-ssh client on PATH"):
        dialer.start()
    assert not dialer.folder.exists()


CHILD_OF_KILLED = """
import os, signal, socket, sys
from dtrun.backends.docker.dialstdio import DialStdio
dialer = DialStdio(["cat"])
dialer.start()
conn = socket.socket(socket.AF_UNIX)
conn.connect(str(dialer.socket))
conn.sendall(b"x"); conn.recv(1)
while not dialer.running():  # counted once Popen returned, maybe after the echo
    pass
print(dialer._children[0].proc.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_children_do_not_outlive_a_killed_dtrun() -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD_OF_KILLED], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    pid = int(proc.stdout)

    def gone() -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        return state == "Z"  # exited, waiting for its new parent to reap it

    _wait(gone)


@pytest.mark.docker
def test_the_client_through_the_local_dial_stdio_uses_one_connection() -> None:
    """What connection.py does for an ssh:// host, with the local `docker system dial-stdio` for ssh."""
    import docker

    from dtrun.backends.docker.engineapi.client import Client

    if not shutil.which("docker"):
        pytest.skip("no docker CLI to run `docker system dial-stdio` with")
    try:
        direct = docker.from_env()
        expected = direct.version()["Version"]
    except docker.errors.DockerException as exc:
        pytest.skip(f"no local Docker daemon: {exc}")
    dialer = DialStdio(["docker", "system", "dial-stdio"])
    url = dialer.start()
    try:
        client = Client(url, pool_size=4)
        assert client.version()["Version"] == expected
        assert client.info()["ID"] == direct.info()["ID"]
        for _ in range(10):
            assert client.ping()
        assert {i.id for i in client.images.list()} == {i.id for i in direct.images.list()}
        client.containers.list(all=True)
        # one child for all of it: one pool serves every path, each call on the kept-alive connection
        assert dialer.started == 1 and dialer.running() == 1
        client.close()
    finally:
        dialer.close()
