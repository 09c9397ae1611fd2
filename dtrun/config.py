"""User settings: a YAML file under the XDG config folder, overridden by `DTRUN_*` environment variables.

Kept deliberately small and import-light: every command reads it.
"""

from __future__ import annotations

import os
from dataclasses import field, fields
from pathlib import Path
from typing import Any

from dtrun.errors import DtrunError, SpecError
from dtrun.structs import struct

#: Settings a user may set with `dtrun config set KEY VALUE`, with what each means.
KEYS: dict[str, str] = {
    "store": "where runs, logs, artifacts and tags live: a folder or any fsspec URL (s3://bucket/prefix)",
    "base_image": "base image for CPU jobs (air-gapped sites bring their own)",
    "gpu_base_image": "base image for GPU jobs",
    "ca_bundle": "CA bundle passed to builds as a secret and to jobs as a read-only file",
    "host": "Docker endpoint (unix://, tcp://, ssh://user@host); default: DOCKER_HOST, context, socket",
    "python_install": "how images get Python: auto, system, conda or uv",
    "max_parallel": "how many jobs of one run may run at the same time",
    "actions_git_base": "where flow actions named owner/repo@tag are cloned from (default https://github.com)",
    "backend": "where jobs run: docker (the default) or slurm (settings slurm.*); dtrun --backend NAME for one command",
    "publish_all": "true: publish job ports (dev environments too) on all of the host's interfaces, not 127.0.0.1",
    "code_trees": "how many trees of a repository's code its code volume on a Docker host keeps besides those in "
                  "use (default 8; 0: pruned only by `dtrun volumes prune`)",
}

_ENV = {key: f"DTRUN_{key.upper()}" for key in KEYS}


def is_provider_base_key(key: str) -> bool:
    """`base_image.<provider>` / `gpu_base_image.<provider>`: a base for one provider's images only."""
    name, dot, provider = key.partition(".")
    return bool(dot) and name in ("base_image", "gpu_base_image") and provider.isidentifier()


def is_backend_key(key: str) -> bool:
    """`<backend>.<key>` (`slurm.partition`): a setting of a backend in the registry, read by it alone."""
    from dtrun.backends.registry import BACKENDS

    name, dot, rest = key.partition(".")
    return bool(dot) and name in BACKENDS and name != "docker" and rest.replace("_", "").isalnum()


def _backend_env() -> dict[str, str]:
    """`DTRUN_SLURM_PARTITION=gpu` -> `slurm.partition`, for every backend in the registry."""
    from dtrun.backends.registry import BACKENDS

    found: dict[str, str] = {}
    for name in BACKENDS:
        prefix = f"DTRUN_{name.upper()}_"
        for env, value in os.environ.items():
            if env.startswith(prefix) and value and name != "docker":
                found[f"{name}.{env[len(prefix):].lower()}"] = value
    return found


def config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "dtrun"


def data_home() -> Path:
    return Path(os.environ.get("DTRUN_DATA_DIR") or Path(os.environ.get("XDG_DATA_HOME")
                or Path.home() / ".local" / "share") / "dtrun")


def config_file() -> Path:
    return Path(os.environ.get("DTRUN_CONFIG") or config_home() / "config.yaml")


@struct(frozen=True)
class Settings:
    store: str
    base_image: str | None = None
    gpu_base_image: str | None = None
    ca_bundle: str | None = None
    host: str | None = None
    python_install: str | None = None
    max_parallel: str | None = None
    actions_git_base: str | None = None
    backend: str | None = None
    publish_all: str | None = None
    code_trees: str | None = None

    @property
    def publishes_all(self) -> bool:
        """`publish_all` as a switch: true/yes/1/on."""
        return (self.publish_all or "").strip().lower() in ("true", "yes", "1", "on")
    #: `<backend>.<key>` settings of the backends in the registry (see `backend_options`).
    options: dict[str, str] = field(default_factory=dict, compare=False)

    def backend_options(self, name: str) -> dict[str, str]:
        """The settings of one backend without its prefix: `slurm.partition` -> `partition`."""
        prefix = f"{name}."
        return {k[len(prefix):]: v for k, v in self.options.items() if k.startswith(prefix)}

    @property
    def ca_bundle_path(self) -> Path | None:
        """The CA bundle to trust: the setting, else the one pip, OpenSSL or requests are told to use."""
        for candidate in (self.ca_bundle, os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"),
                          os.environ.get("REQUESTS_CA_BUNDLE")):
            if candidate and Path(candidate).is_file():
                return Path(candidate)
        return None


def read_file_settings() -> dict[str, str]:
    path = config_file()
    if not path.is_file():
        return {}
    from dtrun.spec.yamlpos import load_yaml  # a file read before comes back without PyYAML

    try:
        data = load_yaml(path).data or {}
    except SpecError as exc:
        raise DtrunError(f"{exc.position or path}: {exc.message}", hint="fix or delete the file") from None
    if not isinstance(data, dict):
        raise DtrunError(f"{path}: expected a mapping of settings", hint="fix or delete the file")
    return {str(k): getattr(v, "raw", None) or str(v) for k, v in data.items() if v is not None}


def write_file_setting(key: str, value: str | None) -> None:
    if key not in KEYS and not is_provider_base_key(key) and not is_backend_key(key):
        import difflib

        close = difflib.get_close_matches(key, list(KEYS), n=1)
        raise DtrunError(f"unknown setting '{key}'",
                         hint=(f"did you mean '{close[0]}'? " if close else "") + f"settings: {', '.join(KEYS)}")
    import yaml

    data: dict[str, Any] = dict(read_file_settings())
    if value is None:
        data.pop(key, None)
    else:
        data[key] = value
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=True))
    tmp.replace(path)


def load_settings() -> Settings:
    """Settings from the file, then the environment (which wins)."""
    values: dict[str, Any] = {"store": str(data_home() / "store")}
    values.update(read_file_settings())
    for key, env in _ENV.items():
        if os.environ.get(env):
            values[key] = os.environ[env]
    names = {f.name for f in fields(Settings)} - {"options"}
    options = {k: v for k, v in values.items() if is_backend_key(k)}
    options.update(_backend_env())
    return Settings(**{k: v for k, v in values.items() if k in names}, options=options)
