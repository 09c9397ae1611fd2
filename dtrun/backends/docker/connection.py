"""Connecting to the Docker daemon that runs the jobs."""

from __future__ import annotations

import concurrent.futures
import os
import threading
from typing import Any

from dtrun.backends.docker.endpoint import Endpoint, resolve
from dtrun.errors import DockerUnavailable


def docker_host(explicit: str | None = None) -> str | None:
    """The endpoint URL to use: an explicit choice (flag or config), else DOCKER_HOST, else a context."""
    endpoint = resolve(explicit)
    return None if endpoint.source == "default socket" else endpoint.url


def tls_config(endpoint: Endpoint) -> Any:
    """docker-py's TLSConfig for a tcp:// endpoint with TLS material, else None."""
    if endpoint.tls is None or endpoint.scheme != "tcp":
        return None
    from docker.tls import TLSConfig

    tls = endpoint.tls
    cert, key = tls.file("cert.pem"), tls.file("key.pem")
    return TLSConfig(client_cert=(cert, key) if cert and key else None,
                     ca_cert=tls.file("ca.pem") if tls.verify else None, verify=tls.verify)


def connect(host: str | Endpoint | None = None) -> Any:
    """A docker-py client for `host`; a clear error when nothing answers there.

    ssh:// endpoints go through the system `ssh` client (sshtunnel.py, else dialstdio.py), so the user's
    ~/.ssh/config, agent and known hosts apply as they do for the docker CLI; no paramiko.
    """
    import docker
    import docker.errors

    endpoint = host if isinstance(host, Endpoint) else resolve(host)
    if endpoint.scheme == "ssh":
        return _over_ssh(endpoint)
    url = endpoint.url
    if endpoint.scheme == "tcp" and endpoint.tls is not None:
        url = "https://" + url.split("://", 1)[1]
    try:
        client = docker.DockerClient(base_url=url, tls=tls_config(endpoint), timeout=120, max_pool_size=16)
        return client  # no ping: asking the API version (`version=None`) already needed an answer
    except (docker.errors.DockerException, OSError) as exc:
        raise DockerUnavailable(
            f"no Docker daemon answers at {endpoint.url} (from {endpoint.source}): {_reason(exc)}",
            hint=_hint(endpoint),
        ) from None


def _over_ssh(endpoint: Endpoint) -> Any:
    """The forwarded socket where the host allows it (one ssh connection for everything), else one
    `ssh HOST docker system dial-stdio` per pooled connection; `DTRUN_SSH_TUNNEL=0` skips the first."""
    import docker
    import docker.errors

    from dtrun.backends.docker.dialstdio import DialStdio, dial_stdio_argv
    from dtrun.backends.docker.sshtunnel import TunnelError

    if os.environ.get("DTRUN_SSH_TUNNEL", "1") != "0":
        client = _through_tunnel(endpoint)
        if client is not None:
            return client
    dialer = DialStdio(dial_stdio_argv(endpoint.url))
    try:
        url = dialer.start()
        client = docker.DockerClient(base_url=url, timeout=120, max_pool_size=16)  # asks /version
    except (TunnelError, docker.errors.DockerException, OSError) as exc:
        reason = dialer.failure() or _reason(exc)  # ssh's own words: host key, auth, no docker there
        dialer.close()
        raise DockerUnavailable(f"no Docker daemon answers at {endpoint.url} (from {endpoint.source}): {reason}",
                                hint=_hint(endpoint)) from None
    _one_pool(client)
    client._dtrun_tunnel = dialer  # lives as long as the client; its socket is also the docker CLI's host
    return client


def _one_pool(client: Any) -> None:
    """Let every request share the pool of connections that /version was asked through.

    docker-py's unix adapter keeps a pool per URL, path included (each container's `/containers/<id>/...`
    its own), so most calls of a run would open a new connection: through dial-stdio a new ssh each,
    through the tunnel a new channel (a round trip over the link). A pool's URL only names its
    connections; one pool serves every path."""
    adapter = client.api.get_adapter("http+docker://localhost")
    keys = list(adapter.pools.keys())
    pool = adapter.pools[keys[0]] if keys else adapter.get_connection("http+docker://localhost")
    adapter.get_connection = lambda url, proxies=None: pool


def _through_tunnel(endpoint: Endpoint) -> Any:
    """A client on a forwarded remote socket (fast), or None to fall back to dial-stdio."""
    import docker
    import docker.errors

    from dtrun.backends.docker.sshtunnel import SshTunnel, TunnelError

    tunnel = SshTunnel(endpoint.url)
    try:
        url = _lasting_thread().submit(tunnel.start).result()
        client = docker.DockerClient(base_url=url, timeout=120, max_pool_size=16)  # asks /version
    except (TunnelError, docker.errors.DockerException, OSError):
        tunnel.close()
        return None
    _one_pool(client)  # each new connection is a round trip over the link to open a channel
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
    """The cause in a few words (`connection refused`), not docker-py's and urllib3's nested wrappers."""
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
