"""Giving each GPU job specific GPUs of its host, never one that another job holds.

There is no dtrun daemon, so the state of "who holds which GPU" must survive separate dtrun processes
and even separate client machines. It lives on the Docker host itself: every GPU container carries the
label `dev.dtrun.gpus=<uuid,uuid>` and a DeviceRequest for exactly those device ids. A GPU is busy while
a container holding it exists and has not exited (created, running, paused, restarting).

Claiming is optimistic: read the busy set, choose, create the container (which publishes the claim),
then read again. If any other container holds one of the same GPUs (two clients chose at the same
moment), this one removes its container and tries again after a random pause. Creation times cannot
decide who wins: the daemon stamps a container before it becomes visible to others (its layer is made
in between), so an older container may still be invisible when a younger one checks, and then each
would think it won. Backing off on any overlap is safe whatever the timing: the one of a racing pair
whose container was listed second checks after the other's container was visible, so it sees it. At
worst both back off, and the random pause separates their next tries.

`interruptible: true` jobs yield: a job that is not interruptible and finds no free GPU may take GPUs
held by interruptible jobs. Those are stopped gracefully (SIGTERM, outputs saved) and marked as
preempted; the dtrun process that runs them waits for a free GPU and resumes them from their saved
outputs (see `engine/interruptible.py`).

A claim never lapses while its container exists, whatever its age: a container left `created` by a
client that died still holds its GPUs until `dtrun status` (the reconcile of that run) or
`dtrun stop` removes it, and the waiting notice names it and how long it has been there (by the
daemon's clock, `clock.py`). A preemption counts only once the victim no longer holds the GPUs. A
victim still `created` is waited for until it starts (stopping a container that was never started
does not keep its client from starting it a moment later). If the stop fails or the victim still
holds the GPUs afterwards, the preempting job's admission fails with a `ResourceError` that names the
victim, rather than starting it on a GPU still in use.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dtrun.backends.base import LABEL, ContainerSpec
from dtrun.backends.docker.hostinfo import GpuInfo, HostInfo
from dtrun.backends.docker.resources import check_gpu_request, describe_request, suitable
from dtrun.engine.scheduler import Admission
from dtrun.errors import ResourceError
from dtrun.plan import Job
from dtrun.spec.models import Gpu
from dtrun.structs import struct

if TYPE_CHECKING:
    from dtrun.backends.docker.backend import DockerBackend

GPU_LABEL = f"{LABEL}.gpus"
INTERRUPTIBLE_LABEL = f"{LABEL}.interruptible"
PREEMPTED_PREFIX = "dtrun-preempted-"
BUSY_STATES = ("created", "running", "paused", "restarting")
POLL_S = 2.0


@struct(frozen=True)
class Holder:
    """A container that holds GPUs."""

    id: str
    name: str
    gpus: tuple[str, ...]
    created: str
    interruptible: bool
    run: str = ""
    workflow: str = ""
    state: str = "running"

    @property
    def order(self) -> tuple[str, str]:
        return (_normal_time(self.created), self.id)


@struct(frozen=True)
class Decision:
    gpus: list[GpuInfo]
    preempt: list[Holder]


def choose(inventory: list[GpuInfo], request: Gpu, busy: dict[str, Holder], *,
           interruptible: bool) -> Decision | None:
    """Which GPUs to take now, and which interruptible holders to stop for them; None: wait.

    Free GPUs first, lowest index first. A job that is not interruptible may also take GPUs of
    interruptible holders, stopping the youngest first and as few as it can.
    """
    matching = sorted(suitable(inventory, request), key=lambda g: g.index)
    free = [g for g in matching if g.uuid not in busy]
    if len(free) >= request.count:
        return Decision(free[: request.count], [])
    if interruptible:
        return None
    holders = sorted({busy[g.uuid] for g in matching if g.uuid in busy and busy[g.uuid].interruptible},
                     key=lambda h: h.order, reverse=True)
    taken, preempt = list(free), []
    for holder in holders:
        if len(taken) >= request.count:
            break
        preempt.append(holder)
        taken += [g for g in matching if busy.get(g.uuid) == holder]
    if len(taken) < request.count:
        return None
    chosen = sorted(taken, key=lambda g: g.index)[: request.count]
    needed = {busy[g.uuid] for g in chosen if g.uuid in busy}
    return Decision(chosen, [h for h in preempt if h in needed])


def holders(client: Any) -> list[Holder]:
    """The containers on the host that hold GPUs, oldest first, from their labels.

    Every container in a busy state counts, however old: a claim lapses only when its container exits
    or is removed, never by age.
    """
    found: list[Holder] = []
    for c in client.api.containers(all=True, filters={"label": GPU_LABEL}):
        state = str(c.get("State", "")).lower()
        if state not in BUSY_STATES:
            continue
        labels = c.get("Labels") or {}
        found.append(Holder(id=c["Id"], name=(c.get("Names") or ["/?"])[0].lstrip("/"),
                            gpus=tuple(i for i in labels.get(GPU_LABEL, "").split(",") if i),
                            created=_created(client, c), interruptible=labels.get(INTERRUPTIBLE_LABEL) == "1",
                            run=labels.get(f"{LABEL}.run", ""), workflow=labels.get(f"{LABEL}.workflow", ""),
                            state=state))
    return sorted(found, key=lambda h: h.order)


def busy_gpus(client: Any) -> dict[str, Holder]:
    """GPU uuid -> the (oldest) container holding it."""
    busy: dict[str, Holder] = {}
    for holder in holders(client):
        for gpu in holder.gpus:
            busy.setdefault(gpu, holder)
    return busy


def _created(client: Any, summary: dict[str, Any]) -> str:
    """The creation time with nanoseconds (the list API gives whole seconds, too coarse for races), as
    the daemon stamped it; the fallback is the same daemon's whole seconds, written in UTC."""
    try:
        return str(client.api.inspect_container(summary["Id"])["Created"])
    except Exception:
        stamp = datetime.fromtimestamp(int(summary.get("Created", 0)), tz=timezone.utc)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def describe_holders(client: Any, found: list[Holder]) -> str:
    """Who holds GPUs, for the waiting notice: a holder that never started says for how long it has not
    (by the daemon's clock) and what settles it if its client is gone."""
    from dtrun.backends.docker.clock import age

    parts = []
    for holder in sorted(set(found), key=lambda h: h.order):
        if holder.state != "created":
            parts.append(holder.name)
            continue
        seconds = age(client, holder.created)
        since = f" for {int(seconds // 60)} min" if seconds is not None and seconds >= 60 else ""
        parts.append(f"{holder.name} (created, not started{since}; if its dtrun is gone, `dtrun status` in "
                     f"its project settles run {holder.run or '?'}, or `docker rm` it)")
    return ", ".join(parts) or "other jobs"


def _normal_time(stamp: str) -> str:
    """RFC 3339 with nanoseconds, made comparable as text (fixed-width fraction)."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    return f"{head}.{frac[:9]:0<9}"


def can_start(backend: DockerBackend, request: Gpu | None, host: HostInfo | None, *,
              interruptible: bool = False) -> bool:
    """An admission check for a scheduler: would `create_with_gpus` get GPUs now (without waiting)?"""
    if request is None or request.count <= 0 or host is None:
        return True
    return choose(host.gpus, request, busy_gpus(backend.client), interruptible=interruptible) is not None


def gpu_admission(backend: DockerBackend, run: str) -> Admission:
    """The scheduler's admission check for a run: a GPU job starts only when GPUs are free for it.

    The run's own running jobs count as holding GPUs even before their containers exist (they may
    still be building), so parallel GPU jobs of one run do not all start and then wait in
    `create_with_gpus`. Their containers, once created, are not counted twice.
    """

    def admit(job: Job, running: list[Job]) -> bool:
        request = job_request(job)
        if request is None or request.count <= 0:
            return True
        host = backend.host_info()
        busy = {uuid: h for uuid, h in busy_gpus(backend.client).items() if h.run != run}
        for other in running:
            wanted = job_request(other)
            if wanted is None or wanted.count <= 0:
                continue
            taken = choose(host.gpus, wanted, busy, interruptible=True)
            if taken is None:  # it waits for GPUs itself; whatever it gets is not free for this one
                continue
            claim = Holder(id=f"pending-{other.workflow}", name=other.workflow, gpus=(), created="",
                           interruptible=other.resources.interruptible, run=run, workflow=other.workflow)
            busy.update({g.uuid: claim for g in taken.gpus})
        return choose(host.gpus, request, busy, interruptible=job.resources.interruptible) is not None

    return admit


def job_request(job: Job) -> Gpu | None:
    """The GPUs a whole job holds on this host: a multi-node torchrun's nodes are containers on this one
    host, each with the per-node request, so together they need `nodes` x that many distinct GPUs."""
    request = job.resources.gpu
    nodes = job.torchrun.nodes if job.torchrun is not None else 1
    if request is None or request.count <= 0 or nodes <= 1:
        return request
    return replace(request, count=request.count * nodes)


def create_with_gpus(backend: DockerBackend, spec: ContainerSpec, request: Gpu | None, host: HostInfo | None, *,
                     interruptible: bool = False, notify: Callable[[str], None] = lambda _: None,
                     poll: float = POLL_S) -> Any:
    """Create the job's container holding specific GPUs; waits while none are free."""
    if request is None or request.count <= 0 or host is None:
        return backend.create(spec)
    check_gpu_request(host, request, spec.labels.get(f"{LABEL}.workflow", spec.name))
    waiting = False
    while True:
        busy = busy_gpus(backend.client)
        decision = choose(host.gpus, request, busy, interruptible=interruptible)
        if decision is None:
            if not waiting:
                held = describe_holders(backend.client, list(busy.values()))
                notify(f"  waiting for {describe_request(request)}: held by {held}")
                waiting = True
            time.sleep(poll)
            continue
        unstarted = [h for h in decision.preempt if h.state == "created"]
        if unstarted:  # its client is about to start it: stopping it now would not stop that start
            if not waiting:
                held = describe_holders(backend.client, unstarted)
                notify(f"  waiting for {describe_request(request)}: the interruptible job {held} is stopped "
                       "once it has started")
                waiting = True
            time.sleep(poll)
            continue
        ids = [g.uuid for g in decision.gpus]
        labels = {**spec.labels, GPU_LABEL: ",".join(ids), INTERRUPTIBLE_LABEL: "1" if interruptible else "0"}
        container = backend.create(replace(spec, labels=labels, gpus=len(ids), gpu_ids=ids))
        stopping = {h.id for h in decision.preempt}
        rivals = [h for h in holders(backend.client)
                  if h.id != container.id and h.id not in stopping and set(h.gpus) & set(ids)]
        if rivals:
            backend.remove(container)
            time.sleep(random.uniform(0.05, 0.5) * poll)
            continue
        for holder in decision.preempt:
            notify(f"  stopping the interruptible job {holder.name} to free GPU(s) for this one")
            failed = preempt(backend, holder, by=spec.name)
            if failed is not None:
                backend.remove(container)
                gpus = ", ".join(g for g in holder.gpus if g in ids)
                raise ResourceError(f"could not preempt the interruptible job {holder.name} (run {holder.run or '?'}), "
                                    f"which holds GPU {gpus}: {failed}; this job was not started on a GPU "
                                    "still in use", hint=f"stop it yourself (`dtrun stop {holder.run}` in its "
                                    f"project, or `docker stop {holder.name}`) and run this job again")
        gpus = ", ".join(f"{g.index} ({g.name})" for g in decision.gpus)
        notify(f"  GPU{'s' if len(ids) > 1 else ''} {gpus}")
        return container


def preempt(backend: DockerBackend, holder: Holder, *, by: str, grace: int = 10) -> str | None:
    """Mark `holder` as preempted (a labelled volume its engine looks for), then free its GPUs: stop it
    gracefully. None once it holds them no more, else why it still does."""
    from dtrun.backends.docker.engineapi import errors as api_errors
    from dtrun.backends.docker.errors import explanation

    with contextlib.suppress(api_errors.APIError):
        backend.client.volumes.create(name=f"{PREEMPTED_PREFIX}{holder.name}",
                                      labels={LABEL: "1", f"{LABEL}.preempted-by": by})
    try:
        backend.client.containers.get(holder.id).stop(timeout=grace)
        state = str(backend.client.api.inspect_container(holder.id)["State"]["Status"]).lower()
    except api_errors.NotFound:
        return None
    except (api_errors.DockerException, OSError) as exc:  # DaemonUnreachable is both
        return f"the Docker daemon did not stop it ({explanation(exc)})"
    if state in BUSY_STATES:
        return f"it is still {state} after the stop"
    return None


def was_preempted(backend: DockerBackend, container_name: str) -> str | None:
    """Who preempted this container (and forget the mark), or None if nobody did."""
    from dtrun.backends.docker.engineapi import errors as api_errors

    try:
        volume = backend.client.volumes.get(f"{PREEMPTED_PREFIX}{container_name}")
    except api_errors.NotFound:
        return None
    by = str((volume.attrs.get("Labels") or {}).get(f"{LABEL}.preempted-by", "another job"))
    with contextlib.suppress(api_errors.APIError):
        volume.remove(force=True)
    return by
