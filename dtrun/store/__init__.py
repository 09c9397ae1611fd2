"""The store stage: durable records and files behind fsspec. Knows nothing of Docker or YAML."""

from dtrun.store.records import ArtifactRecord, JobRecord, RunRecord, State, TagRecord
from dtrun.store.store import Store

__all__ = ["ArtifactRecord", "JobRecord", "RunRecord", "State", "Store", "TagRecord"]
