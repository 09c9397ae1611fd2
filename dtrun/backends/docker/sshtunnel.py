"""ssh:// Docker hosts through one ssh connection that forwards the remote Docker socket.

docker-py's own ssh transport (with the system client) starts a new `ssh ... docker system dial-stdio`
for almost every API call: about a quarter of a second each, many seconds per run. Instead dtrun starts
one `ssh -N -L <local socket>:/var/run/docker.sock` for the life of the process and talks to the local
end as to any unix socket; every API call is then a channel of that one connection. The user's ssh
config, keys, agent and known hosts apply, as for the docker CLI. Where forwarding is not allowed or the
daemon's socket is elsewhere (rootless Docker), the caller falls back to `docker system dial-stdio`
through ssh, one per connection (dialstdio.py).
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REMOTE_SOCKET = "/var/run/docker.sock"
START_TIMEOUT_S = 20.0


class TunnelError(RuntimeError):
    """The tunnel could not be set up; the message is ssh's own."""


def ssh_child_setup() -> None:
    """In an ssh child: get SIGTERM when dtrun dies, even by SIGKILL (Linux; started through `popen_ssh`, so
    that it is the process that dies, not a thread), so no tunnel is orphaned; and
    ignore SIGINT, which a terminal's Ctrl+C sends to the whole group: dtrun then stops its jobs gracefully
    through this ssh, and closes it itself (ssh keeps a signal ignored at its start ignored)."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def ssh_destination(url: str) -> tuple[list[str], str]:
    """The port and user options of an ssh:// URL, and its host name (what follows `--`)."""
    parts = urlsplit(url)
    options = ["-p", str(parts.port)] if parts.port else []
    if parts.username:
        options += ["-l", parts.username]
    return options, str(parts.hostname)


def ssh_argv(url: str, forwards: list[str]) -> list[str]:
    """`ssh` holding only `forwards` open (no command, no terminal) to the host of an ssh:// URL; it exits
    when a forward cannot be set up, rather than running without it."""
    options, host = ssh_destination(url)
    return ["ssh", "-nNT", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=30", *options, *forwards,
            "--", host]


def start_ssh(argv: list[str]) -> subprocess.Popen[bytes]:
    if not shutil.which("ssh"):
        raise TunnelError("no ssh client on PATH")
    return popen_ssh(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def popen_ssh(argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """Start an ssh child (`ssh_child_setup` in it) that lives until it is closed or dtrun ends.

    Linux sends the parent-death signal when the *thread* that started the child ends, not the process.
    An ssh started on a short-lived thread (the connecting thread, `dtrun attach`'s watch that forwards a
    job's ports once it runs and then returns) would get SIGTERM with that thread, and its forward would
    vanish right after it was announced. So children are started on the main thread, or else on one
    spawner thread that lives as long as the process."""
    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, preexec_fn=ssh_child_setup, **options)

    if threading.current_thread() is threading.main_thread():
        return start()
    return _spawner().run(start)


class _Spawner:
    """One daemon thread, for the life of the process, that starts the ssh children asked of it."""

    def __init__(self) -> None:
        self.asked: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="dtrun-ssh-spawner", daemon=True).start()

    def run(self, start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        done: Future[subprocess.Popen[bytes]] = Future()
        self.asked.put((done, start))
        return done.result()

    def _serve(self) -> None:
        while True:
            done, start = self.asked.get()
            try:
                done.set_result(start())
            except BaseException as exc:  # handed to the caller, who raises it
                done.set_exception(exc)


_SPAWNER: _Spawner | None = None
_SPAWNER_LOCK = threading.Lock()


def _spawner() -> _Spawner:
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None:
            _SPAWNER = _Spawner()
        return _SPAWNER


def ssh_error(proc: subprocess.Popen[bytes]) -> str:
    error = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace").strip()
    return error or f"ssh exited with code {proc.returncode}"


class SshTunnel:
    def __init__(self, url: str, remote_socket: str = REMOTE_SOCKET) -> None:
        self.url = url
        self.folder = Path(tempfile.mkdtemp(prefix="dtrun-ssh-"))
        self.socket = self.folder / "docker.sock"
        self.argv = ssh_argv(url, ["-o", "StreamLocalBindUnlink=yes", "-L", f"{self.socket}:{remote_socket}"])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start ssh and wait for the local socket; returns its unix:// URL."""
        self.proc = start_ssh(self.argv)
        atexit.register(self.close)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.socket.exists():
            if self.proc.poll() is not None:
                error = ssh_error(self.proc)
                self.close()
                raise TunnelError(error)
            if time.monotonic() > deadline:
                self.close()
                raise TunnelError(f"ssh did not open the tunnel within {START_TIMEOUT_S:.0f}s")
            time.sleep(0.02)
        return f"unix://{self.socket}"

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        shutil.rmtree(self.folder, ignore_errors=True)
