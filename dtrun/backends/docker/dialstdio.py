"""ssh:// Docker hosts whose socket cannot be forwarded: one `ssh HOST docker system dial-stdio` per connection.

dtrun's fast path (sshtunnel.py) forwards the remote Docker socket through one ssh connection. Where the
host's sshd refuses to forward sockets (`AllowStreamLocalForwarding no`) or the daemon's socket is elsewhere
(rootless Docker), dtrun does what the docker CLI does for ssh:// hosts: the system ssh runs `docker system
dial-stdio` on the host, which joins that command's stdin and stdout to the daemon wherever the host's own
docker CLI finds it. The user's ssh config, keys, agent and known hosts apply; BatchMode, so it never prompts.

dtrun listens on a unix socket in a private folder; each connection accepted there becomes the stdin and
stdout of a new ssh, so ssh itself moves the bytes both ways (nothing is copied in Python) until either side
closes. dtrun's client (and the docker CLI for builds) talk to that socket as to any local daemon, and the
client keeps its connections in its pool: one ssh per pooled connection, not one per API call.

This replaces docker-py's own ssh transport, whose module imports paramiko: every process importing
docker-py where paramiko was installed paid for that import (~75 ms), local daemon or not.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO

from dtrun.backends.docker.sshtunnel import TunnelError, popen_ssh, ssh_destination
from dtrun.structs import struct

#: how long `failure` waits for the children of a connection that just failed to exit and say why
FAILURE_WAIT_S = 2.0


def dial_stdio_argv(url: str) -> list[str]:
    """The system ssh running `docker system dial-stdio` on the host of an ssh:// URL, never prompting."""
    options, host = ssh_destination(url)
    return ["ssh", "-T", "-o", "BatchMode=yes", "-o", "ServerAliveInterval=30", *options, "--", host,
            "docker", "system", "dial-stdio"]


@struct
class _Child:
    """One connection's process, and the file its stderr goes to (a file: a pipe nobody reads can fill)."""

    proc: subprocess.Popen[bytes]
    stderr: IO[bytes]

    def error(self) -> str:
        self.stderr.seek(0)
        text = self.stderr.read().decode(errors="replace").strip()
        return " ".join(text.splitlines()[-5:]) or f"{self.argv0()} exited with code {self.proc.returncode}"

    def argv0(self) -> str:
        args = self.proc.args
        return str(args[0]) if isinstance(args, list) and args else "ssh"


class DialStdio:
    """A local unix socket whose every connection is handed to a new `argv` process as its stdin and stdout.

    `argv` is `dial_stdio_argv(url)` in use; tests give a local command instead (`cat`, or the local
    `docker system dial-stdio`). `start` returns the socket's unix:// URL; `close` (also at exit) ends the
    processes and removes the folder. Children are started from the accepting thread, which lives until
    `close`: they ask the kernel to stop them when that thread (the process) dies, even by SIGKILL, and
    ignore a terminal's Ctrl+C (`ssh_child_setup`, through `popen_ssh`), which dtrun handles.
    """

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.folder = Path(tempfile.mkdtemp(prefix="dtrun-dial-"))
        self.socket = self.folder / "docker.sock"
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._children: list[_Child] = []
        self._failures: list[str] = []
        self.started = 0  #: how many processes were started: one per connection the client opened

    def start(self) -> str:
        if not shutil.which(self.argv[0]):
            self.close()
            raise TunnelError(f"no {self.argv[0]} client on PATH")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.socket))
        listener.listen(64)
        self._listener = listener
        atexit.register(self.close)
        self._thread = threading.Thread(target=self._serve, args=(listener,), name="dtrun-dial-stdio", daemon=True)
        self._thread.start()
        return f"unix://{self.socket}"

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # closed (shutdown wakes the accept)
                return
            with conn:  # the child holds its own copies; when it exits, the peer sees the connection end
                self._spawn(conn)

    def _spawn(self, conn: socket.socket) -> None:
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - kept open with the child, closed when reaped
        try:
            proc = popen_ssh(self.argv, stdin=conn.fileno(), stdout=conn.fileno(), stderr=stderr)
        except OSError as exc:
            stderr.close()
            with self._lock:
                self._failures.append(f"cannot start {self.argv[0]}: {exc}")
            return
        with self._lock:
            self.started += 1
            self._reap()
            self._children.append(_Child(proc, stderr))

    def _reap(self) -> None:
        """Forget the children that exited (no zombies), keeping why the last ones that failed did."""
        running = []
        for child in self._children:
            code = child.proc.poll()
            if code is None:
                running.append(child)
                continue
            if code != 0:
                self._failures = [*self._failures[-4:], child.error()]
            child.stderr.close()
        self._children = running

    def failure(self) -> str | None:
        """Why the latest child that failed did (ssh's own words), for a connection that just broke;
        waits a little for children that are exiting."""
        with self._lock:
            children = list(self._children)
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=FAILURE_WAIT_S / max(len(children), 1))
        with self._lock:
            self._reap()
            return self._failures[-1] if self._failures else None

    def running(self) -> int:
        with self._lock:
            self._reap()
            return len(self._children)

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            children, self._children = self._children, []
        for child in children:
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            child.stderr.close()
        shutil.rmtree(self.folder, ignore_errors=True)
