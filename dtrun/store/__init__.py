"""The store stage: durable records and files behind fsspec. Knows nothing of Docker or YAML.

The names below load on first use (PEP 562), so that `dtrun.store.archive` can be imported without the
rest of the store: the in-job agent ships only the standard library and fsspec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dtrun.store.records import ArtifactRecord, JobRecord, RunRecord, State, TagRecord
    from dtrun.store.store import Store

__all__ = ["ArtifactRecord", "JobRecord", "RunRecord", "State", "Store", "TagRecord"]

_HOMES = {"ArtifactRecord": "records", "JobRecord": "records", "RunRecord": "records", "State": "records",
          "TagRecord": "records", "Store": "store"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'dtrun.store' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"dtrun.store.{home}"), name)
