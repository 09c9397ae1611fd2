"""`AgentJobBackend`: the engine-facing half of every agent-based backend, over a few queue operations.

A cluster backend subclasses it and writes only what is its own: how a job is submitted, listed,
signalled, cancelled and released (`submit_job`, `list_jobs`, `signal_job`, `cancel_job`,
`release_job`), reporting jobs as `QueueJob`s. Everything else the engine asks follows from the
queue plus what the agent wrote to the store, the same for every cluster:

- `phase`: the queue's state (queued or running -> "running", ended -> "exited"; `queued` and
  `pending_reason` tell a queued job apart);
- `logs`: the agent's `logs.txt`, followed in the store;
- `wait`: the queue's end, then the agent's exit code and the outputs it saved (`Exit.saved`), or
  the queue's word when the agent never recorded an exit (killed, node lost);
- `stop`: SIGTERM to the job (the agent forwards it, waits the grace, saves outputs); `kill`: cancel;
- `claim`: one reconciling process wins a finished job (a marker written and read back in the store).

The methods of the Docker-shaped container path (volumes, `put_archive`, `get_archive`, ...) are never
called for an `AgentBackend` (the engine runs its jobs through `engine/agent_job.py`); they answer with
an error in the user's terms rather than being missing, so the object still satisfies `Backend`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from dtrun.backends.base import (
    CREATED,
    EXITED,
    LABEL,
    RUNNING,
    AgentJobSpec,
    Exit,
    ImageInfo,
    Output,
    PublishedPort,
    VolumeMount,
)
from dtrun.errors import DtrunError
from dtrun.structs import struct

if TYPE_CHECKING:
    from dtrun.backends.base import Backend, ContainerSpec, Credentials
    from dtrun.config import Settings
    from dtrun.engine.scheduler import Admission
    from dtrun.images.spec import ImageSpec
    from dtrun.spec.models import Gpu, Resources
    from dtrun.store import Store

#: Exit code reported when the agent never recorded one and the queue has none either (as SIGKILL's).
LOST = 137


@struct(frozen=True)
class QueueJob:
    """One job as the cluster's queue reports it, in dtrun's terms."""

    id: str
    name: str
    labels: dict[str, str]
    phase: str  # CREATED (queued) | RUNNING | EXITED
    reason: str | None = None  # why it waits (queued) or how it ended, in the queue's words
    exit_code: int | None = None
    #: Ended by a cancel that dtrun did not ask for (`scancel`, `kubectl delete`), in words.
    cancelled: str | None = None


@struct
class AgentHandle:
    """What the engine holds for a launched job: its queue id, name and labels (`dev.dtrun.*`)."""

    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)


class AgentJobBackend:
    """Base class of agent-based backends (see the module docstring); subclasses set `host`."""

    host: str = ""
    #: Seconds between two looks at the queue while waiting.
    poll = 1.0
    #: Whether `submit_job` starts every node of a multi-node job (`AgentJobSpec.torchrun`).
    multi_node = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._builder: Backend | None = None
        self._stores: dict[str, Store] = {}

    # -- what a cluster backend writes -------------------------------------------------------------------
    def submit_job(self, spec: AgentJobSpec, notify: Output) -> str:
        raise NotImplementedError

    def list_jobs(self, labels: dict[str, str]) -> list[QueueJob]:
        raise NotImplementedError

    def lookup(self, handle: AgentHandle) -> QueueJob | None:
        raise NotImplementedError

    def signal_job(self, handle: AgentHandle, signal: str) -> None:
        raise NotImplementedError

    def cancel_job(self, handle: AgentHandle) -> None:
        raise NotImplementedError

    def release_job(self, handle: AgentHandle) -> None:
        """Remove what is left of a finished job (a Kubernetes Job object); nothing on Slurm."""

    def publish_image(self, image: str, output: Output) -> str:
        """The reference the nodes pull `image` by (pushed to a registry, or the local image as it is)."""
        return image

    # -- images: built by the local Docker daemon as today, plus the agent layer -------------------------
    @property
    def builder(self) -> Backend:
        if self._builder is None:
            from dtrun.backends.docker import create

            self._builder = create(self.settings, None)
        return self._builder

    def ensure_image(self, spec: ImageSpec, settings: Settings, *, output: Output, rebuild: str = "",
                     step: Output | None = None, say: Output | None = None) -> tuple[str, bool]:
        from dtrun.backends.agent.images import agent_spec, with_agent

        image, built = self.builder.ensure_image(agent_spec(spec, settings.store), settings, output=output,
                                                 rebuild=rebuild, step=step, say=say)
        layered, added = with_agent(self.builder, image, output)
        return self.publish_image(layered, output), built or added

    def image(self, ref: str) -> ImageInfo | None:
        return self.builder.image(ref)

    def pull_image(self, ref: str, auth: Credentials | None = None) -> ImageInfo:
        return self.builder.pull_image(ref, auth)  # registry_auth pulls go to the local daemon too

    def build_image(self, *, dockerfile: str, context: dict[str, bytes], tag: str, labels: dict[str, str],
                    output: Output) -> None:
        self.builder.build_image(dockerfile=dockerfile, context=context, tag=tag, labels=labels, output=output)

    # -- capacity: the cluster's scheduler decides -------------------------------------------------------
    def check_resources(self, workflow: str, resources: Resources, nodes: int = 1) -> None:
        """The queue refuses what no node can give (sbatch, the API server) at submission; the nodes of a
        multi-node job are the cluster's separate machines, each checked by the queue against the request."""

    def check_reachable(self) -> None:
        """One look at the queue: a cluster that does not answer (ssh to the login node, the API server)
        fails here."""
        self.list_jobs({LABEL: "1"})

    def admission(self, run: str) -> Admission:
        from dtrun.engine.scheduler import admit_all

        return admit_all

    def host_cpus(self) -> int | None:
        return None

    def driver_version(self) -> str | None:
        return None

    # -- one job -----------------------------------------------------------------------------------------
    def job_name(self, spec: AgentJobSpec) -> str:
        """The name the queue lists the job by (what `find` and `get` see again later)."""
        return spec.name

    def launch(self, spec: AgentJobSpec, *, notify: Output = lambda m: None) -> AgentHandle:
        if spec.torchrun is not None and spec.torchrun.nodes > 1 and not self.multi_node:
            from dtrun.errors import SpecError

            raise SpecError(f"workflow '{spec.workflow}' asks for {spec.torchrun.nodes} nodes, which {self.host} "
                            "does not run yet", hint="use `nodes: 1`, or `backend: docker` or `kubernetes`")
        return AgentHandle(self.submit_job(spec, notify), self.job_name(spec), dict(spec.labels))

    def queued(self, handle: AgentHandle) -> bool:
        job = self.lookup(handle)
        return job is not None and job.phase == CREATED

    def pending_reason(self, handle: AgentHandle) -> str | None:
        job = self.lookup(handle)
        return job.reason if job is not None and job.phase == CREATED else None

    def phase(self, handle: AgentHandle) -> str:
        """A queued job is "running" to the engine: unlike a created container, nobody needs to start it
        (a reconcile after a killed client must leave it alone, not remove it as never started)."""
        job = self.lookup(handle)
        return EXITED if job is None else RUNNING if job.phase == CREATED else job.phase

    def logs(self, handle: AgentHandle, *, follow: bool = True, since: float | None = None,
             timestamps: bool = False) -> Iterator[bytes]:
        from dtrun.backends.agent.status import follow_log
        from dtrun.engine.logs import split_frame, stamp_seconds

        store = self._store(handle)
        for line in follow_log(store, handle.labels[f"{LABEL}.job"], lambda: self.phase(handle) == EXITED,
                               follow=follow, poll=self.poll):
            stamp, text = split_frame(line)
            if since is not None and stamp is not None and stamp_seconds(stamp) < since:
                continue
            yield line if timestamps else text

    def wait(self, handle: AgentHandle) -> Exit:
        from dtrun.backends.agent.status import agent_status

        while (job := self.lookup(handle)) is not None and job.phase != EXITED:
            time.sleep(self.poll)
        status = agent_status(self._store(handle), handle.labels[f"{LABEL}.job"])
        queue_code = job.exit_code if job is not None else None
        cancelled = job.cancelled if job is not None else None
        if status is None or status.get("state") != "exited" or status.get("exit_code") is None:
            why = (job.reason if job is not None else None) or "the job ended before its agent recorded an exit"
            return Exit(queue_code if queue_code not in (None, 0) else LOST, saved=[],
                        refused=[] if cancelled else [f"no outputs saved: {why}"], stopped=cancelled)
        saved, refused = list(status.get("artifacts") or []), list(status.get("refused") or [])
        node = 1  # the other nodes' agents save the artifacts that name their node (`artifacts: [{path, node}]`)
        while (other := agent_status(self._store(handle), handle.labels[f"{LABEL}.job"], node=node)) is not None:
            saved += list(other.get("artifacts") or [])
            refused += list(other.get("refused") or [])
            node += 1
        return Exit(int(status["exit_code"]), saved=saved, refused=refused,
                    stopped=cancelled or ("stopped by a signal from outside dtrun" if status.get("stopped") else None))

    def stop(self, handle: AgentHandle, grace: int = 10) -> None:
        """SIGTERM to the job: the agent forwards it, gives the command its grace, then saves outputs."""
        if self.queued(handle):
            self.cancel_job(handle)
            return
        self.signal_job(handle, "TERM")

    def kill(self, handle: AgentHandle) -> None:
        self.cancel_job(handle)

    def remove(self, handle: AgentHandle) -> None:
        self.release_job(handle)

    def was_preempted(self, name: str) -> str | None:
        return None  # a cluster requeues its own preempted jobs; the agent resumes from checkpoints

    # -- finding what runs -------------------------------------------------------------------------------
    def find(self, labels: dict[str, str]) -> list[AgentHandle]:
        return [AgentHandle(j.id, j.name, j.labels) for j in self.list_jobs(labels)
                if all(j.labels.get(k) == v for k, v in labels.items())]

    def get(self, name: str) -> AgentHandle | None:
        found = [h for h in self.find({}) if h.name == name or h.id == name]
        return found[0] if found else None

    def claim(self, handle: AgentHandle) -> bool:
        """One reconciling process wins: the one whose exclusive write of the claim object succeeds.

        Where the store's server refuses exclusive writes, each process writes its token unless one is
        there and reads it back after a pause: the last writer wins, unless two writes are further apart
        than the pause."""
        store = self._store(handle)
        path = store.job_path(handle.labels[f"{LABEL}.job"], f"claim-{handle.id}")
        token = uuid.uuid4().hex.encode()
        try:
            return store.create_once(path, token)
        except NotImplementedError:
            pass
        if not store.exists(path):
            store.write_bytes(path, token)
            time.sleep(0.2)
        try:
            return store.read_bytes(path) == token
        except FileNotFoundError:
            return False

    # -- the container path's staging, which agent jobs do not use ---------------------------------------
    def _container_only(self, what: str) -> DtrunError:
        return DtrunError(f"{what} needs the Docker backend: on {self.host} each job runs through dtrun's "
                          "in-job agent", hint="flow jobs with steps run on `backend: docker` for now")

    def create_volume(self, name: str, labels: dict[str, str]) -> str:
        raise self._container_only("a job workspace volume")

    def remove_volume(self, name: str) -> None:
        """Agent jobs have no volumes; reconcile and finish may still ask to remove one."""

    def materialize_once(self, volume: str, image: str, labels: dict[str, str], open_tar: Callable[[], IO[bytes]],
                         *, stale_after: float = 600.0) -> bool:
        raise self._container_only("an input volume")

    def ca_bundle_mount(self, ca: Path, image: str) -> tuple[VolumeMount, dict[str, str]]:
        raise self._container_only("a CA bundle mount")

    def submit(self, spec: ContainerSpec, gpu: Gpu | None = None, *, interruptible: bool = False,
               notify: Output = lambda m: None) -> Any:
        raise self._container_only("a multi-step job")

    def put_archive(self, handle: Any, path: str, data: IO[bytes] | bytes) -> None:
        raise self._container_only("copying files into a job")

    def put_file(self, handle: Any, path: str, content: bytes, mode: int = 0o444) -> None:
        raise self._container_only("copying files into a job")

    def start(self, handle: Any) -> None:
        raise self._container_only("starting a created container")

    def published_ports(self, handle: Any) -> list[PublishedPort]:
        return []

    def forward_ports(self, ports: list[PublishedPort]) -> tuple[list[PublishedPort], Callable[[], None]]:
        """Agent jobs publish no ports (the engine refuses `ports:` on this path): nothing to forward."""
        return ports, lambda: None

    def get_archive(self, handle: Any, path: str) -> Iterator[bytes] | None:
        raise self._container_only("exporting files from a job")

    def local_path(self, handle: Any, path: str) -> Path | None:
        return None

    def node_handle(self, handle: Any, rank: int) -> Any:
        raise self._container_only("exporting files from a node of a job")

    # -- helpers -----------------------------------------------------------------------------------------
    def _store(self, handle: AgentHandle) -> Store:
        from dtrun.store import Store

        repo = handle.labels.get(f"{LABEL}.repo", "")
        if repo not in self._stores:
            self._stores[repo] = Store(self.settings.store, repo)
        return self._stores[repo]
