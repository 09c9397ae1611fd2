"""Saving `mount: true` artifacts while the job runs, so a checkpoint survives an interruption.

A background thread exports each such artifact from the running container every `interval` seconds
(`DTRUN_CHECKPOINT_INTERVAL`, default 60) through the Docker API, the same way the final export does.
Each save is atomic in the store (tar named by content, manifest last), so a client killed mid-save
leaves the previous checkpoint intact. The final export at the end of the job replaces the last one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from dtrun.backends.base import Backend
from dtrun.engine.collect import Declared
from dtrun.store import Store

DEFAULT_INTERVAL = 60.0


def interval() -> float:
    try:
        return max(0.2, float(os.environ.get("DTRUN_CHECKPOINT_INTERVAL") or DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL


class Checkpointer:
    """Periodic saves of a running container's `mount: true` artifacts; `stop()` before the final export."""

    def __init__(self, backend: Backend, store: Store, job_id: str, artifacts: list[Declared],
                 container: object, say: Callable[[str], None], every: float | None = None) -> None:
        self.backend, self.store, self.job_id = backend, store, job_id
        self.artifacts, self.container, self.say = artifacts, container, say
        self.every = every if every is not None else interval()
        self.saves = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"dtrun-checkpoints-{job_id}", daemon=True)

    def start(self) -> Checkpointer:
        if self.artifacts:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def __enter__(self) -> Checkpointer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def save_once(self) -> None:
        from dtrun.engine.artifacts import export_artifact

        for art in self.artifacts:
            if self._stop.is_set():
                return
            try:  # from the artifact's node (node 0 unless it names another)
                item = export_artifact(self.backend, self.backend.node_handle(self.container, art.node), self.store,
                                       self.job_id, art.path, art.container_path, running=True, source=art.source)
            except Exception as exc:  # a failed checkpoint must not kill the job
                self.say(f"  checkpoint of {art.path} failed: {exc}")
                continue
            if item is not None:
                self.saves += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.save_once()


def start_checkpoints(backend: Backend, store: Store, job_id: str, artifacts: list[Declared],
                      container: object, say: Callable[[str], None]) -> Checkpointer:
    """Start saving the `mount: true` ones among the job's artifacts while the job runs."""
    mounted = [d for d in artifacts if d.mount]
    return Checkpointer(backend, store, job_id, mounted, container, say).start()
