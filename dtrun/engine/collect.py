"""What happens once a job's container has exited, whoever notices it: the engine that started it, or
a later command reconciling after that engine was killed. Everything it needs is on the container's
labels and in the store, so both paths are this one function.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dtrun.backends.base import LABEL, Backend, Exit
from dtrun.engine import cache, control
from dtrun.engine.artifacts import save_outputs as export_outputs
from dtrun.store import JobRecord, State, Store
from dtrun.structs import struct
from dtrun.units import size

if TYPE_CHECKING:
    from dtrun.engine.progress import Transfers
    from dtrun.plan import Job

ARTIFACTS_LABEL = f"{LABEL}.artifacts"
WORKSPACE_LABEL = f"{LABEL}.workspace"


@struct(frozen=True)
class Declared:
    """An output folder a job declared: as written, where it is in the container, and which node of a
    multi-node job it is saved from (0: the first; every node has a disk of its own).

    A `node: all` artifact is one `Declared` per node: node N's copy of the folder (`source`) is saved as
    `<path>/node<N>` (`path`, `container_path`), so a download or a dependent job gets every node's.
    """

    path: str
    container_path: str
    node: int = 0
    #: Where the folder is in the node's container when that is not `container_path` (`node: all`).
    source: str | None = None
    #: Saved while the job runs too (`mount: true`); not on the label: only the running engine checkpoints.
    mount: bool = False

    @property
    def copy_from(self) -> str:
        return self.source or self.container_path


def declare(job: Job) -> list[Declared]:
    """The job's artifacts as each node saves them (`node: all` expanded over the job's nodes)."""
    from dtrun.plan import container_path

    nodes = job.torchrun.nodes if job.torchrun is not None else 1
    declared = []
    for art in job.artifacts:
        where = container_path(job.working_dir, art.path)
        if art.node == "all":
            declared += [Declared(f"{art.path.rstrip('/')}/node{n}", f"{where.rstrip('/')}/node{n}", n, where,
                                  art.mount) for n in range(nodes)]
        else:
            declared.append(Declared(art.path, where, art.node, None, art.mount))
    return declared


def declared_label(declared: list[Declared]) -> str:
    """The label a job's container carries, so a later process saves the same outputs (a node, a source
    only when set)."""
    items = []
    for d in declared:
        extra = [d.node, d.source] if d.source else [d.node] if d.node else []
        items.append([d.path, d.container_path, *extra])
    return json.dumps(items)


def declared_from_labels(labels: dict[str, str]) -> list[Declared]:
    try:
        return [Declared(item[0], item[1], int(item[2]) if len(item) > 2 else 0,
                         str(item[3]) if len(item) > 3 else None)
                for item in json.loads(labels.get(ARTIFACTS_LABEL, "[]"))]
    except (ValueError, TypeError, IndexError):
        return []


def finish_job(store: Store, backend: Backend, container: Any, record: JobRecord, exit_info: Exit,
               declared: list[Declared], *, status: Callable[[str], None] = lambda m: None,
               memory: int | None = None, interruptible: bool = False, progress: Transfers | None = None,
               clean_ups: list[threading.Thread] | None = None) -> None:
    """Record the exit, save the outputs (unless aborted), settle the final state, clean up.

    With `clean_ups`, the container and its workspace are removed on a thread added there, once the
    state is saved: the result is reported while the daemon removes them, and the run waits for
    the threads before it returns (nothing is left behind). Without it, they are removed here.

    Why the command waits for the removal (5-10 ms on a local daemon) rather than leave it to a detached
    process: when `dtrun run` returns, `docker ps -a`, `docker volume ls`, a script's next step and the
    Python API's caller all see the host as it was before the run, and a leftover exists only where the
    process was killed, named after its run. A detached remover would save those milliseconds at the
    price of a window in which the job's container and volumes still exist after the command is over,
    and of leftovers nobody reports when it fails (the daemon gone, a remote host's tunnel closed with
    this process). What is kept off the command's path instead: no lookup before each removal, the
    workspace's volumes at once (`remove_volume`), and the result shown before any of it.

    An interruptible job that another job preempted (backends/docker/gpus.py) goes back to SUBMITTED with its
    outputs saved, and its workspace volume is kept: the engine that runs it resumes it in a new
    container on the same volume (engine/interruptible.py). Every other exit removes the volume.
    """
    record.exit_code = exit_info.code
    action = control.requested(store, record.id)
    if action is not None:
        asked = State.ABORTING if action == control.ABORT else State.STOPPING
        if record.state != asked:
            _move_at(record, asked, store)
    try:
        if action == control.ABORT:
            record.move(State.ABORTED, "aborted: outputs were not saved")
            return
        record.move(State.UPLOADING)
        store.save_job(record)
        if exit_info.saved is not None:  # the job saved its own outputs (an agent-based backend)
            from dtrun.store import ArtifactRecord

            record.artifacts = [ArtifactRecord.from_dict(a) for a in exit_info.saved]
            refused = list(exit_info.refused)
        else:
            refused = save_outputs(store, backend, container, record, declared, status, progress)
        preempted = backend.was_preempted(container.name) if interruptible else None
        if refused:  # a job whose outputs were refused did not produce what it declared
            record.move(State.FAILED, "; ".join(refused))
        elif action == control.STOP:
            record.move(State.STOPPED, "stopped by the user; outputs saved")
        elif exit_info.interrupted:  # the host cut it short (its daemon restarted): resumable
            record.move(State.FAILED, exit_info.interrupted)
        elif exit_info.stopped:  # cancelled from outside dtrun (`scancel`, `kubectl delete`)
            record.move(State.STOPPED, exit_info.stopped)
        elif preempted:  # before exit 0: a job that handles SIGTERM and exits cleanly must resume too
            record.move(State.SUBMITTED, f"interruptible: preempted by {preempted}, outputs saved; "
                        "resumes when its GPUs are free")
        elif exit_info.code == 0:
            record.move(State.DONE)
            if record.cache_key:
                cache.remember(store, record.cache_key, record)
        else:
            record.move(State.FAILED, f"out of memory: the job exceeded its memory limit "
                        f"({size(memory) if memory else 'the host memory'}) and was killed (exit {exit_info.code})"
                        if exit_info.oom_killed else f"exited with code {exit_info.code}")
    finally:
        # if this save fails (the store went away), the exception skips the clean-up below on purpose:
        # the kept container lets a later command's reconcile finish the job once the store is back
        store.save_job(record)
        workspace = (getattr(container, "labels", None) or {}).get(WORKSPACE_LABEL)
        keep = record.state == State.SUBMITTED  # preempted: the next attempt resumes on the workspace

        def clean_up() -> None:
            """Remove what the finished job held. The record is saved already, so a host too slow or gone
            to answer now costs a leftover (named, for `docker rm`), never the job's result."""
            try:
                backend.remove(container)
                if workspace and not keep:
                    backend.remove_volume(workspace)
            except Exception as exc:  # a backend error or a timeout: say so, do not fail the finished job
                reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                status(f"  could not remove {container.name} and its workspace yet ({reason}); "
                       f"remove them with `docker rm -f {container.name}` if they stay")

        if clean_ups is None:
            clean_up()
        else:
            thread = threading.Thread(target=clean_up, name=f"dtrun-rm-{record.id}")
            thread.start()
            clean_ups.append(thread)


def save_outputs(store: Store, backend: Backend, container: Any, record: JobRecord,
                 declared: list[Declared], status: Callable[[str], None], progress: Transfers | None = None,
                 ) -> list[str]:
    """Export the declared artifacts into the record, each from its node; returns why any was refused
    (unsafe, not a folder)."""
    saved, refused = [], []
    for node in sorted({d.node for d in declared}):
        result = export_outputs(backend, store, record.id,
                                [(d.path, d.container_path, d.copy_from) for d in declared if d.node == node],
                                backend.node_handle(container, node), status, progress=progress,
                                job=record.workflow)
        saved += result.saved
        refused += result.refused
    order = [d.path for d in declared]  # as declared, whichever node each came from
    record.artifacts = sorted(saved, key=lambda a: order.index(a.path) if a.path in order else len(order))
    return refused


def _move_at(record: JobRecord, state: State, store: Store) -> None:
    """A stop asked for by another process: recorded at the time it was asked."""
    record.move(state)
    try:
        at = float(json.loads(store.read_bytes(store.job_path(record.id, "control.json")))["at"])
        record.history[-1].at = min(at, time.time())
    except (FileNotFoundError, ValueError, KeyError):
        pass


def finish_run(store: Store, run: Any, jobs: list[JobRecord]) -> None:
    """Settle a run from its jobs once all are finished, and take it off the active list."""
    from dtrun.engine.runner import EXIT_INTERRUPTED

    order = (State.FAILED, State.ABORTED, State.STOPPED)
    worst = next((j for s in order for j in jobs if j.state == s), None)
    run.state = worst.state if worst else State.DONE if jobs else State.FAILED
    if not jobs:  # the process that was to run it ended before recording any job
        run.exit_code = 1
    elif worst is None:
        run.exit_code = 0
    elif worst.state == State.FAILED:
        run.exit_code = worst.exit_code if worst.exit_code not in (None, 0) else 1
    else:
        run.exit_code = EXIT_INTERRUPTED
    run.finished_at = time.time()
    store.save_run(run)
    control.mark_finished(store, run.name)
