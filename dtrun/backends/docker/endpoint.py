"""Which Docker daemon to talk to, and how: the endpoint a user means, resolved the way Docker does.

In order: `--host`, the dtrun config (`host`), `DOCKER_HOST` (with TLS from `DOCKER_TLS_VERIFY` and
`DOCKER_CERT_PATH`), the current Docker context (`DOCKER_CONTEXT`, else `currentContext` in
`~/.docker/config.json`, read from the context store directly: no `docker` CLI call), the default
socket. Pure file and environment reading, so it is cheap and unit-testable.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from dtrun.errors import DtrunError
from dtrun.structs import struct

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
SCHEMES = ("unix", "tcp", "ssh", "npipe", "http", "https")


@struct(frozen=True)
class Tls:
    """Client TLS material: a folder holding ca.pem, cert.pem and key.pem, and whether to verify."""

    cert_path: Path | None
    verify: bool

    def file(self, name: str) -> str | None:
        if self.cert_path is None:
            return None
        path = self.cert_path / name
        return str(path) if path.is_file() else None


@struct(frozen=True)
class Endpoint:
    url: str
    source: str
    tls: Tls | None = None

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0] if "://" in self.url else "tcp"

    @property
    def is_local(self) -> bool:
        return self.scheme in ("unix", "npipe")

    @property
    def address(self) -> str:
        """The host name the client uses to reach this daemon (and the ports it publishes)."""
        if self.is_local:
            return "127.0.0.1"
        parts = urlsplit(self.url if "://" in self.url else f"tcp://{self.url}")
        return parts.hostname or "127.0.0.1"

    def __str__(self) -> str:
        return self.url


def docker_config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def check_url(url: str, source: str) -> str:
    url = url.strip()
    if "://" not in url:
        raise DtrunError(f"the Docker endpoint '{url}' (from {source}) has no scheme",
                         hint="write it as unix:///var/run/docker.sock, tcp://host:2376 or ssh://user@host")
    scheme = url.split("://", 1)[0]
    if scheme not in SCHEMES:
        raise DtrunError(f"the Docker endpoint '{url}' (from {source}) has the unknown scheme '{scheme}'",
                         hint="use unix://, tcp:// or ssh://user@host")
    if scheme in ("tcp", "ssh", "http", "https") and not urlsplit(url).hostname:
        raise DtrunError(f"the Docker endpoint '{url}' (from {source}) names no host",
                         hint="for example tcp://gpu-box:2376 or ssh://me@gpu-box")
    return url


def _env_tls() -> Tls | None:
    verify = os.environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
    cert_path = os.environ.get("DOCKER_CERT_PATH")
    if not verify and not cert_path:
        return None
    return Tls(Path(cert_path) if cert_path else docker_config_dir(), verify)


def current_context() -> str | None:
    """The context `docker context use` chose (or DOCKER_CONTEXT names); None for `default`."""
    name = os.environ.get("DOCKER_CONTEXT")
    if not name:
        try:
            data = json.loads((docker_config_dir() / "config.json").read_text())
        except (OSError, ValueError):
            return None
        name = data.get("currentContext") if isinstance(data, dict) else None
    return name if name and name != "default" else None


def context_endpoint(name: str) -> Endpoint:
    """The docker endpoint of a named context, from the CLI's context store (meta.json + tls/)."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    store = docker_config_dir() / "contexts"
    meta_file = store / "meta" / digest / "meta.json"
    try:
        meta = json.loads(meta_file.read_text())
        docker = meta["Endpoints"]["docker"]
        host = str(docker["Host"])
    except (OSError, ValueError, KeyError, TypeError):
        raise DtrunError(f"the current Docker context '{name}' has no usable endpoint ({meta_file})",
                         hint="`docker context ls` lists contexts; `docker context use default` goes back to "
                         "the local daemon") from None
    source = f"Docker context '{name}'"
    tls_dir = store / "tls" / digest / "docker"
    tls = None
    if tls_dir.is_dir() or docker.get("SkipTLSVerify"):
        tls = Tls(tls_dir if tls_dir.is_dir() else None, verify=not docker.get("SkipTLSVerify", False))
    return Endpoint(check_url(host, source), source, tls)


def resolve(flag: str | None = None, config: str | None = None) -> Endpoint:
    """The endpoint in effect, and where it came from (for messages and `dtrun hosts`)."""
    if flag:
        return Endpoint(check_url(flag, "--host"), "--host", _env_tls() if flag.startswith("tcp://") else None)
    if config:
        return Endpoint(check_url(config, "dtrun config 'host'"), "dtrun config",
                        _env_tls() if config.startswith("tcp://") else None)
    env = os.environ.get("DOCKER_HOST")
    if env:
        return Endpoint(check_url(env, "DOCKER_HOST"), "DOCKER_HOST",
                        _env_tls() if env.startswith("tcp://") else None)
    context = current_context()
    if context:
        return context_endpoint(context)
    return Endpoint(DEFAULT_SOCKET, "default socket")
