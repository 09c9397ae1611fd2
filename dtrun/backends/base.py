"""The boundary between the engine and whatever runs jobs: the `Backend` protocol, in dtrun's own types.

The engine, the CLI and the API talk to a backend only through this protocol; a backend package
(`dtrun/backends/docker/`, a cluster's) implements it and is found by name in `registry.py`. A job's
unit of work on a backend is a *handle* (a container, a Slurm job, a pod): the engine never looks
inside one beyond its `name` and `labels`, and passes it back to the backend for everything else.
Labels are each backend's ground truth of what runs: every handle dtrun creates carries the run,
job and store it belongs to, so any later command can find it (`find`) after the client died.
Errors a backend meets become `DtrunError` subclasses inside the backend package, never here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from dtrun.structs import struct

if TYPE_CHECKING:
    from dtrun.code.protocol import CodeVolumes
    from dtrun.config import Settings
    from dtrun.engine.scheduler import Admission
    from dtrun.images.spec import ImageSpec
    from dtrun.providers.torchrun_launch import Torchrun
    from dtrun.spec.models import Gpu, Resources

#: The prefix of every label dtrun sets (`dev.dtrun.run`, `dev.dtrun.job`, `dev.dtrun.store`, ...).
LABEL = "dev.dtrun"
#: Where a job's CA bundle is mounted and the variables that point the usual clients at it.
CA_DIR = "/etc/dtrun"
CA_PATH = f"{CA_DIR}/ca.crt"
CA_ENV = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
#: `ports: N` -> the job listens on PORT_0..PORT_{N-1} = FIRST_PORT..FIRST_PORT+N-1 inside its job.
FIRST_PORT = 8000

Output = Callable[[str], None]


@struct(frozen=True)
class VolumeMount:
    """A backend volume (a workspace, a dep's artifacts, the CA bundle) mounted at `target` in a job."""

    volume: str
    target: str
    read_only: bool = False


@struct(frozen=True)
class ContainerSpec:
    """One unit of work as the engine asks for it: image, command, environment, mounts, resources."""

    name: str
    image: str
    command: list[str] | None
    entrypoint: list[str] | None
    env: dict[str, str]
    working_dir: str
    labels: dict[str, str]
    mounts: list[VolumeMount] = field(default_factory=list)
    gpus: int = 0
    memory: int | None = None
    shm_size: int | None = None
    cpus: float | None = None
    gpu_ids: list[str] | None = None
    ports: int = 0
    #: publish `ports` on all of the host's interfaces (`--publish-all`), not only where the client alone
    #: reaches them (the host's loopback, forwarded over ssh for an ssh:// host)
    publish_all: bool = False
    #: A job over several nodes: the backend starts `torchrun.nodes` of them, gives each its rank and
    #: node 0's address, and answers for them as one handle (outputs from node 0, all fail together).
    torchrun: Torchrun | None = None


@struct(frozen=True)
class PublishedPort:
    name: str  # PORT_0
    container_port: int
    host_port: int
    url: str  # host:port; where the client reaches it when `reachable`
    #: False for a port on a remote host's loopback: the client reaches it only through `forward_ports`
    reachable: bool = True


#: Closes what `Backend.forward_ports` opened.
Close = Callable[[], None]


@struct(frozen=True)
class Exit:
    """How a job ended. A backend whose job saved its own outputs (an in-job agent: `AgentBackend`)
    reports them here (`saved`, as `ArtifactRecord` JSON, and `refused`), so the engine records them
    instead of exporting anything; `stopped` says why the job was stopped outside dtrun (`scancel`)."""

    code: int
    oom_killed: bool = False
    #: set when the host cut the job short (its daemon restarted under it): why, in the user's words
    interrupted: str | None = None
    saved: list[dict[str, Any]] | None = None
    refused: list[str] = field(default_factory=list)
    stopped: str | None = None


@struct(frozen=True)
class ImageInfo:
    """An image on the backend's host, as `dtrun images` and the image manager need it."""

    id: str
    tags: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    size: int = 0
    created: float = 0.0
    #: The user its containers run as (`USER`; "" = root) and its `HOME` if its environment sets one:
    #: where a job's `~` is (`cache: [~/.cache/pip]`) and who must be able to write its artifact folders.
    user: str = ""
    home: str | None = None


@struct(frozen=True)
class Credentials:
    """A registry's user and password for one pull (the password is left out of the repr)."""

    username: str
    password: str = field(repr=False)


@struct(frozen=True)
class VolumeInfo:
    name: str
    labels: dict[str, str]
    created: float


#: A `Check`'s verdict: `FAIL` for what every run needs, `warn` for what only some workflows need (GPUs)
#: or speed, `skip` when it does not apply or an earlier check failed.
CheckStatus = Literal["ok", "warn", "FAIL", "skip"]


@struct(frozen=True)
class Check:
    """One line of `dtrun doctor`: what was checked, the verdict, and (unless all is well) the fix.

    A backend package says what it needs of the machine through a module-level
    `diagnose(settings, host) -> list[Check]` beside its `create` (see `registry.diagnose_backend`):
    it must work when nothing answers, so it cannot be a method of a connected backend.
    """

    name: str
    status: CheckStatus
    message: str
    fix: str | None = None


class Handle(Protocol):
    """What the engine may read of a submitted job; everything else goes back through the backend."""

    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> dict[str, str]: ...


@struct(frozen=True)
class AgentJobSpec:
    """A whole job for a backend whose jobs run the in-job agent (`AgentBackend.launch`).

    `manifest` is the agent's `JobManifest` as JSON (code, inputs, outputs and logs all go through the
    store); `secrets` are values the backend hands to the job through its own secret channel (sbatch's
    environment, a Kubernetes Secret), never written into a script or an object the cluster shows.
    """

    name: str
    run: str
    job_id: str
    workflow: str
    image: str
    labels: dict[str, str]
    manifest: str
    secrets: dict[str, str]
    working_dir: str
    gpus: int = 0
    gpu_name: str | None = None
    memory: int | None = None
    shm_size: int | None = None
    cpus: float | None = None
    interruptible: bool = False
    #: seconds; a scheduler's time limit (Slurm `--time`, Kubernetes `activeDeadlineSeconds`)
    timeout: int | None = None
    #: A job over several nodes (a multi-node torchrun), as on `ContainerSpec`.
    torchrun: Torchrun | None = None


#: `Backend.phase` answers one of these.
CREATED, RUNNING, EXITED = "created", "running", "exited"


@runtime_checkable
class Backend(Protocol):
    """Everything the engine, the API and the CLI ask of the place jobs run."""

    #: Where jobs run, as users name it (`unix:///var/run/docker.sock`, `ssh://gpu-box`).
    host: str

    # -- capacity and admission, before anything is built or started --------------------------------
    #: `resources` are per node; `nodes` > 1 for a multi-node torchrun (a host running all of its nodes
    #: checks that it has `nodes` x them).
    def check_resources(self, workflow: str, resources: Resources, nodes: int = 1) -> None: ...
    #: Raise the backend's own error (`DockerUnavailable`, `BackendError`) if its host does not answer
    #: now; asked where a failure would otherwise come later and unseen (a detached run's parent).
    def check_reachable(self) -> None: ...
    def admission(self, run: str) -> Admission: ...
    def host_cpus(self) -> int | None: ...
    def driver_version(self) -> str | None: ...

    # -- images -------------------------------------------------------------------------------------------
    def ensure_image(self, spec: ImageSpec, settings: Settings, *, output: Output, rebuild: str = "",
                     step: Output | None = None, say: Output | None = None) -> tuple[str, bool]: ...
    def image(self, ref: str) -> ImageInfo | None: ...
    def pull_image(self, ref: str, auth: Credentials | None = None) -> ImageInfo: ...
    def build_image(self, *, dockerfile: str, context: dict[str, bytes], tag: str, labels: dict[str, str],
                    output: Output) -> None: ...

    # -- staging inputs (volumes) -------------------------------------------------------------------------
    def create_volume(self, name: str, labels: dict[str, str]) -> str: ...
    def remove_volume(self, name: str) -> None: ...
    def materialize_once(self, volume: str, image: str, labels: dict[str, str],
                         open_tar: Callable[[], IO[bytes]], *, stale_after: float = 600.0) -> bool: ...
    def ca_bundle_mount(self, ca: Path, image: str) -> tuple[VolumeMount, dict[str, str]]: ...

    # -- one job ------------------------------------------------------------------------------------------
    def submit(self, spec: ContainerSpec, gpu: Gpu | None = None, *, interruptible: bool = False,
               notify: Output = lambda m: None) -> Any: ...
    def put_archive(self, handle: Any, path: str, data: IO[bytes] | bytes) -> None: ...
    def put_file(self, handle: Any, path: str, content: bytes, mode: int = 0o444) -> None: ...
    def start(self, handle: Any) -> None: ...
    def published_ports(self, handle: Any) -> list[PublishedPort]: ...
    def forward_ports(self, ports: list[PublishedPort]) -> tuple[list[PublishedPort], Close]:
        """`ports` as this client reaches them, forwarding those it cannot (an ssh:// host's loopback)
        until the returned function is called."""
        ...
    def logs(self, handle: Any, *, follow: bool = True, since: float | None = None,
             timestamps: bool = False) -> Iterator[bytes]: ...
    def wait(self, handle: Any) -> Exit: ...
    def get_archive(self, handle: Any, path: str) -> Iterator[bytes] | None: ...
    #: The handle of node `rank` of a multi-node job (to copy an artifact out of it, `artifacts: node`);
    #: a one-node job's own handle is node 0.
    def node_handle(self, handle: Any, rank: int) -> Any: ...
    def local_path(self, handle: Any, path: str) -> Path | None: ...
    def stop(self, handle: Any, grace: int = 10) -> None: ...
    def kill(self, handle: Any) -> None: ...
    def remove(self, handle: Any) -> None: ...
    def was_preempted(self, name: str) -> str | None: ...

    # -- finding what runs, after the client that started it died ----------------------------------------
    def find(self, labels: dict[str, str]) -> list[Any]: ...
    def get(self, name: str) -> Any | None: ...
    def phase(self, handle: Any) -> str: ...
    def claim(self, handle: Any) -> bool: ...


@runtime_checkable
class AgentBackend(Protocol):
    """A backend whose client cannot reach the job's container (Slurm, Kubernetes): the whole job is
    handed over at once and an in-job agent (`python -m dtrun.agent`) moves code, dep artifacts, logs,
    outputs and the exit through the store. The engine runs such jobs with `engine/agent_job.py`
    instead of the container path; finding, stopping, following and collecting them uses the same
    handle methods of `Backend` (`find`, `phase`, `logs`, `wait`, `stop`, `kill`, `claim`, `remove`).
    `dtrun.backends.agent.AgentJobBackend` implements all of that over a few queue operations.
    """

    def launch(self, spec: AgentJobSpec, *, notify: Output = lambda m: None) -> Any: ...
    def queued(self, handle: Any) -> bool: ...  # waiting in the queue (its `phase` is "running")
    def pending_reason(self, handle: Any) -> str | None: ...


@runtime_checkable
class DescribesHosts(Protocol):
    """A backend that says itself what its machines offer (`dtrun hosts` on a cluster: partitions,
    nodes, GPUs and what is free), as text for the terminal and as plain data for `--json`."""

    def describe_hosts(self) -> tuple[str, Any]: ...


def code_volumes(backend: Backend) -> CodeVolumes | None:
    """The backend's store of code by content (issue 19, `dtrun.code.protocol.CodeVolumes`), or None.

    Optional on purpose, so the `Backend` protocol itself does not change: a backend that offers
    `put_code`, `code_view`, `remove_code_view` and `prune_code` gets the tree sent once per run (only
    what changed) and a private copy-on-write view per job at the workspace; for any other backend
    (Slurm, Kubernetes: their agent fetches code through the store) this answers None and the engine
    ships the snapshot's tar into each job through `put_archive`, as before. Removing the workspace
    with `remove_volume` removes a view whole.
    """
    from dtrun.code.protocol import CodeVolumes

    return backend if isinstance(backend, CodeVolumes) else None
