"""The store stage: durable records and files behind fsspec. Knows nothing of Docker or YAML.

The names below are imported when first used (PEP 562), so `dtrun.store.archive` stays importable
without pydantic: the in-job agent (`dtrun.agent`, standard library plus fsspec) uses it inside images
that have nothing else installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dtrun.store.records import ArtifactRecord, JobRecord, RunRecord, State, TagRecord
    from dtrun.store.store import Store

__all__ = ["ArtifactRecord", "JobRecord", "RunRecord", "State", "Store", "TagRecord"]
_WHERE = {"Store": "dtrun.store.store", **{n: "dtrun.store.records" for n in __all__ if n != "Store"}}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'dtrun.store' has no attribute {name!r}")
