"""A job's ports on an ssh:// host, brought to this client's loopback through ssh.

On an ssh:// host dtrun publishes a job's ports on that host's 127.0.0.1 only (nobody else on its
network reaches them), so the client reaches them through one `ssh -L 127.0.0.1:LOCAL:127.0.0.1:REMOTE`
per job, held for as long as the process attached to the run lives (the engine's run, or `dtrun
attach`). The local port is the remote one when that is free here, so the URL reads the same on both
machines; else any free port. The user's ssh config, keys and agent apply, as for the Docker socket.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time

from dtrun.backends.docker.sshtunnel import TunnelError, ssh_argv, ssh_error, start_ssh
from dtrun.errors import BackendError

START_TIMEOUT_S = 20.0


def free_port(wanted: int) -> int:
    """`wanted` when nothing listens on it here, else a port the system picks."""
    for port in (wanted, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise BackendError("no free port on 127.0.0.1 to forward a job's port to")


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


class PortForward:
    """One ssh process forwarding `(local, remote)` port pairs; `close` ends it."""

    def __init__(self, url: str, pairs: list[tuple[int, int]]) -> None:
        self.url = url
        self.pairs = pairs
        self.argv = ssh_argv(url, [arg for local, remote in pairs
                                   for arg in ("-L", f"127.0.0.1:{local}:127.0.0.1:{remote}")])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start ssh and wait until every local port accepts connections (ssh listens once logged in)."""
        try:
            self.proc = start_ssh(self.argv)
        except TunnelError as exc:
            raise BackendError(f"cannot forward the job's ports from {self.url}: {exc}") from None
        deadline = time.monotonic() + START_TIMEOUT_S
        waiting = [local for local, _ in self.pairs]
        while waiting:
            if self.proc.poll() is not None:
                raise BackendError(f"forwarding the job's ports from {self.url} failed: {ssh_error(self.proc)}",
                                   hint="the host's sshd must allow TCP forwarding (AllowTcpForwarding)")
            if time.monotonic() > deadline:
                self.close()
                raise BackendError(f"ssh did not forward the job's ports from {self.url} within "
                                   f"{START_TIMEOUT_S:.0f}s")
            waiting = [port for port in waiting if not _accepts(port)]
            if waiting:
                time.sleep(0.05)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
