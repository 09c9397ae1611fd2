"""Putting together what running a flow file needs: settings, store, backend, code snapshot, secrets."""

from __future__ import annotations

import os
from pathlib import Path

from dtrun.config import Settings
from dtrun.flows.engine import FlowEngine, FlowHooks
from dtrun.flows.loader import LoadedFlow, load_flow

SECRET_ENV_PREFIX = "DTRUN_SECRET_"


def collect_secrets(pairs: list[str]) -> dict[str, str]:
    """`DTRUN_SECRET_<NAME>` variables, then `--secret NAME=VALUE` or `--secret NAME` (value from $NAME)."""
    from dtrun.errors import DtrunError

    secrets = {k[len(SECRET_ENV_PREFIX):]: v for k, v in os.environ.items() if k.startswith(SECRET_ENV_PREFIX)}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            if name not in os.environ:
                raise DtrunError(f"--secret {name}: no environment variable {name} to take the value from",
                                 hint=f"export {name}=... or pass --secret {name}=VALUE")
            value = os.environ[name]
        secrets[name] = value
    return secrets


def repo_of(path: Path) -> tuple[str, Path | None]:
    """The store namespace of a flow: its git repository's id, or one derived from its folder."""
    from dtrun.spec.project import find_git_root

    git_root = find_git_root(path.resolve().parent)
    if git_root is None:
        import hashlib

        folder = path.resolve().parent
        return f"local/flows-{hashlib.sha256(str(folder).encode()).hexdigest()[:10]}", None
    from dtrun.snapshot import _repo_id

    return _repo_id(git_root, None), git_root


def make_engine(path: Path, settings: Settings, *, host: str | None, secrets: dict[str, str],
                hooks: FlowHooks) -> tuple[FlowEngine, LoadedFlow]:
    from dtrun.backends.registry import create_backend
    from dtrun.snapshot import take_snapshot
    from dtrun.store import Store

    loaded = load_flow(path)
    repo, git_root = repo_of(path)
    snapshot = take_snapshot(git_root, git_root) if git_root else None
    backend = create_backend(settings, host)
    engine = FlowEngine(settings, Store(settings.store, snapshot.repo_id if snapshot else repo), backend,
                        base_dir=git_root or path.resolve().parent, secrets=secrets, snapshot=snapshot, hooks=hooks)
    return engine, loaded
