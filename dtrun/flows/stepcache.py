"""DataTorch's action cache: a step whose action (or the step itself) says `cache: true` reuses the outputs
of an earlier successful run of the same action, at the same version, with the same inputs.

As in DataTorch's agent, only the outputs are reused (not files the step wrote). The key is the action's
git URL and tag, or for a local folder the digest of its files (a folder has no version), plus the
inputs as JSON. Entries live in the store, so they outlive the process and are shared by whoever
shares the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dtrun.flows.actions import safe_url
from dtrun.flows.runs import cache_key

if TYPE_CHECKING:
    from dtrun.flows.actions import Action
    from dtrun.store import Store


def step_key(action: Action, values: Mapping[str, Any]) -> str:
    """The cache key of one step of `action` with its checked input values."""
    ref = action.ref
    if ref.git is not None:
        return cache_key(f"{safe_url(ref.git)}#{ref.file or ''}", ref.tag, values)
    if action.folder is not None:
        from dtrun.flows.process import folder_tar

        return cache_key("folder:" + hashlib.sha256(folder_tar(action.folder)).hexdigest(), None, values)
    return cache_key(f"image:{ref.image}", None, values)


def _path(store: Store, key: str) -> str:
    return store.repo_path("flow-cache", f"{key}.json")


def load(store: Store, key: str) -> dict[str, Any] | None:
    """The outputs saved under `key`, or None."""
    path = _path(store, key)
    if not store.exists(path):
        return None
    data = store.read_json(path)
    return dict(data["outputs"]) if isinstance(data, dict) and isinstance(data.get("outputs"), dict) else None


def save(store: Store, key: str, outputs: Mapping[str, Any], *, run: str) -> None:
    store.write_json(_path(store, key), {"outputs": dict(outputs), "run": run})
