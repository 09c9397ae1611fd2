"""ssh:// Docker hosts through one ssh connection that forwards the remote Docker socket.

docker-py's own ssh transport (with the system client) starts a new `ssh ... docker system dial-stdio`
for almost every API call: about a quarter of a second each, many seconds per run. Instead dtrun starts
one `ssh -N -L <local socket>:/var/run/docker.sock` for the life of the process and talks to the local
end as to any unix socket; every API call is then a channel of that one connection. The user's ssh
config, keys, agent and known hosts apply, as for the docker CLI. Where forwarding is not allowed or the
daemon's socket is elsewhere (rootless Docker), the caller falls back to docker-py's transport.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REMOTE_SOCKET = "/var/run/docker.sock"
START_TIMEOUT_S = 20.0


class TunnelError(RuntimeError):
    """The tunnel could not be set up; the message is ssh's own."""


def _die_with_parent() -> None:
    """In the ssh child: get SIGTERM when dtrun dies, even by SIGKILL (Linux), so no tunnel is orphaned."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class SshTunnel:
    def __init__(self, url: str, remote_socket: str = REMOTE_SOCKET) -> None:
        parts = urlsplit(url)
        self.url = url
        self.argv = ["ssh", "-nNT", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=30",
                     "-o", "StreamLocalBindUnlink=yes"]
        if parts.port:
            self.argv += ["-p", str(parts.port)]
        if parts.username:
            self.argv += ["-l", parts.username]
        self.folder = Path(tempfile.mkdtemp(prefix="dtrun-ssh-"))
        self.socket = self.folder / "docker.sock"
        self.argv += ["-L", f"{self.socket}:{remote_socket}", "--", str(parts.hostname)]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start ssh and wait for the local socket; returns its unix:// URL."""
        if not shutil.which("ssh"):
            raise TunnelError("no ssh client on PATH")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        atexit.register(self.close)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.socket.exists():
            if self.proc.poll() is not None:
                error = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace").strip()
                self.close()
                raise TunnelError(error or f"ssh exited with code {self.proc.returncode}")
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
