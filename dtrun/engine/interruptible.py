"""`interruptible: true` on Docker hosts: a job that may be stopped to make room, and resumes by itself.

Docker hosts have no spot instances, so dtrun gives the word its other half: an interruptible job lends
its GPUs. While it runs, a job that is not interruptible and finds no free GPU on the same host may stop
it (SIGTERM, the usual grace period, its declared outputs saved as at any graceful stop; see
`backends/docker/gpus.py`). The dtrun process running the interruptible job sees the preemption mark, records the
job as SUBMITTED ("preempted by ..."), waits until GPUs are free again, and starts a new container with
the job's saved outputs in place: its workspace volume is kept between the attempts, and artifacts
outside the workspace are restored from the store. A job that checkpoints into its artifacts continues
where it stopped. The stored log holds every attempt, separated by a line naming the preemption.
"""

from __future__ import annotations

from typing import Any

from dtrun.backends.base import Backend
from dtrun.engine.artifacts import tar_path
from dtrun.store import JobRecord, State, Store
from dtrun.store.archive import under


class Attempts:
    """The attempts of one job: the first, and one more after each preemption."""

    def __init__(self, backend: Backend, store: Store, record: JobRecord, workspace: str) -> None:
        self.backend, self.store, self.record, self.workspace = backend, store, record, workspace
        self.count = 0
        self.earlier_log = b""

    def prepare(self, container: Any) -> None:
        """Before a resumed attempt starts: put back saved outputs that live outside the workspace volume."""
        if not self.count:
            return
        for artifact in self.record.artifacts:
            target = artifact.container_path
            if target == self.workspace or target.startswith(self.workspace + "/"):
                continue  # still in the kept workspace volume
            with self.store.open(tar_path(self.store, self.record.id, artifact)) as data:
                self.backend.put_archive(container, "/", under(artifact.restore_at, data))

    def again(self) -> bool:
        """After an attempt: True when it was preempted and must run again.

        The stored log so far (which begins with the earlier attempts' logs, see `earlier_log`) and a
        line naming the preemption become `earlier_log`, which the next attempt's log starts with.
        """
        if self.record.state != State.SUBMITTED:
            return False
        log = self.store.job_path(self.record.id, "logs.txt")
        part = self.store.read_bytes(log) if self.store.exists(log) else b""
        self.earlier_log = part + f"\n--- dtrun: {self.record.message} ---\n\n".encode()
        self.count += 1
        return True

