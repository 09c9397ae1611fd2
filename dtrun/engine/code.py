"""A run's code on the backend (issue 19): hashed once, sent once (only what changed), one view per job.

The snapshot is hashed in the background as soon as the first job starts, so the digest index pass
overlaps that job's image lookup; the digest is the cache key's `code`. On a backend with code volumes
(`dtrun.backends.base.code_volumes`: Docker, local or remote, through the API) the tree is put into
the repository's code volume once per run, starting at the first cache miss and overlapping the
job's input and cache mounts, and each job gets a fresh copy-on-write view of it at the workspace
instead of a tar of the whole snapshot. Other backends get `None` from `view` and the caller copies the
snapshot in as before. The large-untracked notice is emitted once, as a warning event, when hashing ends.

The put holds the run's tree until `close` (the run's end), so no prune removes it between two of its
jobs; a put that lands a new tree may make the volume due for a prune (`dtrun.code.retention`: the
`code_trees` setting), which then starts on a thread of its own and leaves the deleting to the daemon.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from dtrun.engine.events import STATUS, WARNING, Event
from dtrun.units import size

if TYPE_CHECKING:
    from dtrun.engine.runner import Engine

RUN_LABEL = "dev.dtrun.run"  # backends.base.LABEL + ".run", as every run's containers are labelled


class RunCode:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._start_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._hashing: threading.Thread | None = None
        self._sending: threading.Thread | None = None
        self._error: BaseException | None = None
        self._ref: Any = None
        self._pruning: threading.Thread | None = None
        self._released: Any = None
        self._run = ""  # the run's name, on the hold of its tree (reconcile releases a dead run's)

    def _background(self, target: Any, name: str) -> threading.Thread:
        def guarded() -> None:
            try:
                target()
            except BaseException as exc:  # re-raised in the job that waits for it
                self._error = exc

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        return thread

    def start(self) -> None:
        """Begin hashing (once per run); returns at once."""
        with self._start_lock:
            if self._hashing is None:
                self._hashing = self._background(self._hash, "dtrun-hash")

    def _hash(self) -> None:
        snapshot = self.engine.snapshot
        snapshot.manifest  # noqa: B018 - computes and caches the digests
        notice = snapshot.untracked_notice()
        if notice is not None:
            paths = ", ".join(f"{path} ({size(n)})" for path, n in notice.paths[:5])
            more = f" and {len(notice.paths) - 5} more" if len(notice.paths) > 5 else ""
            self.engine.emit(Event(WARNING, f"shipping {size(notice.total)} of untracked files git does not "
                                            f"ignore: {paths}{more}; to leave them out, {notice.hint}"))

    def digest(self) -> str:
        """The snapshot's digest, once hashing is done (raises what hashing raised)."""
        self.start()
        assert self._hashing is not None
        self._hashing.join()
        if self._error is not None:
            raise self._error
        return self.engine.snapshot.digest

    def send(self, run: str = "") -> None:
        """Begin putting the tree into the backend's code volume (once per run), if it has one. `run`:
        the run's name, labelled on the run's hold of its tree."""
        from dtrun.backends.base import code_volumes

        self._run = self._run or run
        if code_volumes(self.engine.backend) is None or not self.engine.snapshot.files:
            return
        with self._start_lock:
            if self._sending is None:
                self._sending = self._background(self._send, "dtrun-send")

    def _send(self) -> None:
        from dtrun.backends.base import code_volumes
        from dtrun.code.retention import due, kept_trees
        from dtrun.code.volume import LABEL_CODE, volume_name
        from dtrun.engine.runner import store_label

        engine, snapshot = self.engine, self.engine.snapshot
        store = code_volumes(engine.backend)
        assert store is not None
        trees = kept_trees(engine.settings.code_trees)  # a bad setting fails here, before anything is sent
        self.digest()
        labels = engine.labels(**{LABEL_CODE: snapshot.repo_id})
        self._ref = store.put_code(volume_name(snapshot.repo_id, store_label(engine.store)), snapshot.root,
                                   snapshot.manifest, labels, {RUN_LABEL: self._run} if self._run else None)
        sent = self._ref.sent
        if sent is not None and due(trees, self._ref.landed):
            self._pruning = threading.Thread(target=self._prune, args=(trees,), name="dtrun-prune", daemon=True)
            self._pruning.start()
        if sent is not None and sent.needed:
            engine.emit(Event(STATUS, f"  sent {len(sent.needed)} changed file{'s' if len(sent.needed) != 1 else ''}"
                                      f" of code ({size(sent.bytes_to_send)})"))

    def _prune(self, trees: int) -> None:
        """The volume, pruned to `trees` besides what is in use; this run's tree kept. A prune that fails
        costs disk space, not the run: a warning, and the next due run tries again."""
        from dtrun.backends.base import code_volumes

        store = code_volumes(self.engine.backend)
        assert store is not None
        try:
            store.prune_code(self._ref.volume, [self._ref.build], newest=trees, wait=False)
        except Exception as exc:  # any failure only leaves the old trees in place
            self.engine.emit(Event(WARNING, f"could not prune the code volume {self._ref.volume}: {exc}"))

    def close(self) -> threading.Thread:
        """The run's jobs are over (views that still exist keep their layers themselves): on a thread,
        the put is waited for, a prune it started hands its work to the daemon, and the run's hold on
        the tree goes (from then on a prune may remove the tree). Join the thread before the run returns;
        it overlaps the run's last records and clean-ups."""
        thread = threading.Thread(target=self._close, name="dtrun-code-close", daemon=True)
        thread.start()
        return thread

    def _close(self) -> None:
        from dtrun.backends.base import code_volumes

        if self._sending is not None:
            self._sending.join()  # it may start the prune: joined first
        if self._pruning is not None:
            self._pruning.join()
            self._pruning = None
        store = code_volumes(self.engine.backend)
        ref = self._ref
        if store is not None and ref is not None and ref.hold and ref is not self._released:
            self._released = ref
            store.release_code(ref)

    def view(self, name: str, labels: dict[str, str], image: str | None = None) -> str | None:
        """A fresh copy-on-write view of the run's tree as the volume `name`, or None where the backend
        has no code volumes (the caller copies the snapshot in). `image`: the job's, for what the view
        needs run on the host (the backend's own probe images otherwise)."""
        from dtrun.backends.base import code_volumes

        store = code_volumes(self.engine.backend)
        if store is None or not self.engine.snapshot.files:
            return None
        self.send(labels.get(RUN_LABEL, ""))
        assert self._sending is not None
        self._sending.join()
        if self._error is not None:
            raise self._error
        if image is not None:
            return store.code_view(self._ref, name, labels, image)
        from dtrun.errors import BackendError

        try:  # a flow job: its steps' images are known only step by step
            return store.code_view(self._ref, name, labels)
        except BackendError:  # no image to probe or copy with on the host: the snapshot is copied in
            return None
