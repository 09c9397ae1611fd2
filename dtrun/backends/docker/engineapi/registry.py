"""Registry credentials for the daemon's pulls, pushes and builds, found as the docker CLI finds them.

The daemon pulls and pushes; the client only hands it credentials, base64url JSON in `X-Registry-Auth`
(one registry) or `X-Registry-Config` (every known registry, for a build's FROM lines). They come from
the caller (`registry_auth` in a workflow, `--username`) or from the docker CLI's config
(`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): a credential helper named for the registry
(`credHelpers`), the config's store (`credsStore`), else the `auths` entry. A helper is the program
`docker-credential-NAME`, asked with `get` and the registry's address on its stdin.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

#: Docker Hub's key in config.json (the CLI's historical address for it)
HUB = "https://index.docker.io/v1/"


def split_reference(ref: str) -> tuple[str, str | None]:
    """`repo:tag` or `repo@digest` -> (repo, tag or digest); a port in the registry's address is no tag."""
    if "@" in ref:
        repository, digest = ref.split("@", 1)
        return repository, digest
    repository, _, tag = ref.rpartition(":")
    if not repository or "/" in tag:
        return ref, None
    return repository, tag


def registry_of(repository: str) -> str:
    """The registry that holds `repository` (`docker.io` for a name without a registry part)."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _config() -> dict[str, Any]:
    folder = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    try:
        data = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _keys(registry: str) -> list[str]:
    """The names a registry may be filed under in config.json."""
    if registry in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return [HUB, "index.docker.io", "docker.io", "https://index.docker.io/v1", "registry-1.docker.io"]
    return [registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/", f"https://{registry}/v2/"]


def _from_helper(helper: str, server: str) -> dict[str, str] | None:
    try:
        proc = subprocess.run([f"docker-credential-{helper}", "get"], input=server, capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None  # "credentials not found in native keychain": none for this registry
    try:
        found = json.loads(proc.stdout)
    except ValueError:
        return None
    if found.get("Username") == "<token>":
        return {"identitytoken": str(found.get("Secret", "")), "serveraddress": server}
    return {"username": str(found.get("Username", "")), "password": str(found.get("Secret", "")),
            "serveraddress": server}


def credentials(registry: str, config: dict[str, Any] | None = None) -> dict[str, str] | None:
    """The docker CLI's credentials for `registry`, or None where it has none."""
    config = _config() if config is None else config
    keys = _keys(registry)
    helpers = config.get("credHelpers") or {}
    for key in keys:
        if key in helpers:
            return _from_helper(str(helpers[key]), key)
    auths = config.get("auths") or {}
    if config.get("credsStore"):
        for key in [k for k in keys if k in auths] or keys[:1]:
            found = _from_helper(str(config["credsStore"]), key)
            if found:
                return found
    for key in keys:
        entry = auths.get(key)
        if not isinstance(entry, dict):
            continue
        if entry.get("identitytoken"):
            return {"identitytoken": str(entry["identitytoken"]), "serveraddress": key}
        if entry.get("auth"):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return {"username": user, "password": password, "serveraddress": key}
        if entry.get("username"):
            return {"username": str(entry["username"]), "password": str(entry.get("password", "")),
                    "serveraddress": key}
    return None


def encode(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def auth_header(ref: str, given: dict[str, str] | None) -> str:
    """`X-Registry-Auth` for a pull or push of `ref`: the given credentials, else the CLI's, else none
    (`{}`: the daemon needs the header for a push even when the registry is open)."""
    found = given if given else credentials(registry_of(split_reference(ref)[0]))
    return encode(found or {})


def registry_config() -> str:
    """`X-Registry-Config` for a build: the credentials of every registry the CLI's config knows."""
    config = _config()
    known = set(config.get("auths") or {}) | set(config.get("credHelpers") or {})
    out = {}
    for key in sorted(known):
        found = credentials(key.split("://", 1)[-1].split("/", 1)[0], config)
        if found:
            out[key] = found
    return encode(out)
