"""Connecting to the Docker daemon that runs the jobs."""

from __future__ import annotations

import concurrent.futures
import os
import threading
from typing import TYPE_CHECKING

from dtrun.backends.docker.endpoint import Endpoint, resolve
from dtrun.errors import DockerUnavailable

if TYPE_CHECKING:
    from dtrun.backends.docker.engineapi.client import Client
    from dtrun.backends.docker.engineapi.tls import TLSConfig


def docker_host(explicit: str | None = None) -> str | None:
    """The endpoint URL to use: an explicit choice (flag or config), else DOCKER_HOST, else a context."""
    endpoint = resolve(explicit)
    return None if endpoint.source == "default socket" else endpoint.url


def tls_config(endpoint: Endpoint) -> TLSConfig | None:
    """The TLS files for a tcp:// endpoint with TLS material (its client certificate, and its CA when it
    verifies), else None."""
    if endpoint.tls is None or endpoint.scheme != "tcp":
        return None
    from dtrun.backends.docker.engineapi.tls import TLSConfig

    tls = endpoint.tls
    cert, key = tls.file("cert.pem"), tls.file("key.pem")
    return TLSConfig(cert=(cert, key) if cert and key else None, ca_cert=tls.file("ca.pem") if tls.verify else None,
                     verify=tls.verify)


def connect(host: str | Endpoint | None = None) -> Client:
    """dtrun's Engine API client for `host` (engineapi/); a clear error when nothing answers there.

    ssh:// endpoints go through the system `ssh` client (sshtunnel.py, else dialstdio.py), so the user's
    ~/.ssh/config, agent and known hosts apply as they do for the docker CLI; no paramiko.
    """
    from dtrun.backends.docker.engineapi.client import Client
    from dtrun.backends.docker.engineapi.errors import DockerException

    endpoint = host if isinstance(host, Endpoint) else resolve(host)
    if endpoint.scheme == "ssh":
        return _over_ssh(endpoint)
    try:
        return Client(endpoint.url, tls=tls_config(endpoint))  # its /_ping is the check that the daemon answers
    except (DockerException, OSError, ValueError) as exc:
        raise DockerUnavailable(
            f"no Docker daemon answers at {endpoint.url} (from {endpoint.source}): {_reason(exc)}",
            hint=_hint(endpoint),
        ) from None


def _over_ssh(endpoint: Endpoint) -> Client:
    """The forwarded socket where the host allows it (one ssh connection for everything), else one
    `ssh HOST docker system dial-stdio` per pooled connection; `DTRUN_SSH_TUNNEL=0` skips the first.
    The client's pool serves every path, so a run's calls share its few connections (each new one is a
    new ssh through dial-stdio, a round trip over the link to open a channel through the tunnel)."""
    from dtrun.backends.docker.dialstdio import DialStdio, dial_stdio_argv
    from dtrun.backends.docker.engineapi.client import Client
    from dtrun.backends.docker.engineapi.errors import DockerException
    from dtrun.backends.docker.sshtunnel import TunnelError

    if os.environ.get("DTRUN_SSH_TUNNEL", "1") != "0":
        client = _through_tunnel(endpoint)
        if client is not None:
            return client
    dialer = DialStdio(dial_stdio_argv(endpoint.url))
    try:
        client = Client(dialer.start())  # asks /_ping
    except (TunnelError, DockerException, OSError) as exc:
        reason = dialer.failure() or _reason(exc)  # ssh's own words: host key, auth, no docker there
        dialer.close()
        raise DockerUnavailable(f"no Docker daemon answers at {endpoint.url} (from {endpoint.source}): {reason}",
                                hint=_hint(endpoint)) from None
    client._dtrun_tunnel = dialer  # lives as long as the client; its socket is also the docker CLI's host
    return client


def _through_tunnel(endpoint: Endpoint) -> Client | None:
    """A client on a forwarded remote socket (fast), or None to fall back to dial-stdio."""
    from dtrun.backends.docker.engineapi.client import Client
    from dtrun.backends.docker.engineapi.errors import DockerException
    from dtrun.backends.docker.sshtunnel import SshTunnel, TunnelError

    tunnel = SshTunnel(endpoint.url)
    try:
        url = _lasting_thread().submit(tunnel.start).result()
        client = Client(url)  # asks /_ping
    except (TunnelError, DockerException, OSError):
        tunnel.close()
        return None
    client._dtrun_tunnel = tunnel  # lives as long as the client
    return client


_lasting: concurrent.futures.ThreadPoolExecutor | None = None
_lasting_lock = threading.Lock()


def _lasting_thread() -> concurrent.futures.ThreadPoolExecutor:
    """One thread that lives as long as the process, to start the tunnel's ssh from.

    The ssh child asks the kernel to be stopped when its parent dies (PR_SET_PDEATHSIG, sshtunnel.py),
    and for the kernel the parent is the thread that started it, not the process. The backend connects
    on first use, often on a job's thread: started there, the tunnel would close when that job ends,
    under the jobs still using it."""
    global _lasting
    with _lasting_lock:
        if _lasting is None:
            _lasting = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dtrun-tunnel")
        return _lasting


def _reason(exc: Exception) -> str:
    """The cause in a few words (`connection refused`), also from an OS error's or a wrapper's text."""
    import re

    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    # a dead socket: `('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))`
    match = match or re.search(r"\b\w+Error\(-?\d+, '([^']+)'\)", text)
    return match.group(1).strip().lower() if match else text


def _hint(endpoint: Endpoint) -> str:
    if endpoint.scheme == "ssh":
        from urllib.parse import urlsplit

        parts = urlsplit(endpoint.url)
        port = f"-p {parts.port} " if parts.port else ""
        user = f"{parts.username}@" if parts.username else ""
        return (f"check that `ssh {port}{user}{parts.hostname} docker info` works (key, known host, the "
                "user in the docker group), or pick another host with --host / DOCKER_HOST")
    if endpoint.scheme == "tcp":
        tls = "TLS is on" if endpoint.tls else "TLS is off (set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH for 2376)"
        return f"check the address and port; {tls}; or pick another host with --host / DOCKER_HOST"
    where = os.environ.get("DOCKER_HOST")
    return ("start Docker (`sudo systemctl start docker`, or `make docker` in dtrun's checkout), "
            "or point DOCKER_HOST at a host that runs one (e.g. ssh://me@gpu-box)"
            + (f"; DOCKER_HOST is {where}" if where else ""))
