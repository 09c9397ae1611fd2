"""The Docker backend: a job as a container on a local or remote daemon, through the API only.

Code goes in and outputs come out as tar streams (`put_archive`/`get_archive`) through named
volumes, never bind mounts of client paths: the daemon may be on another machine (design principle 1).
Everything created is labelled and named from the run and job, so a later command can find it.
Implements `dtrun.backends.base.Backend`; volumes, images and published ports are in `volumes.py`,
`images.py` and `ports.py`; the code volumes of `dtrun.code.protocol.CodeVolumes` (issue 19) in `codevolumes.py`.
"""

from __future__ import annotations

import io
import os
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from dtrun.backends.base import (
    CREATED,
    EXITED,
    FIRST_PORT,
    LABEL,
    RUNNING,
    ContainerSpec,
    Exit,
    Output,
)
from dtrun.backends.docker.codevolumes import CodeVolumeOps
from dtrun.backends.docker.errors import explanation, ignored
from dtrun.backends.docker.images import ImageOps
from dtrun.backends.docker.lazyclient import LazyClient
from dtrun.backends.docker.nodes import NodeGroup
from dtrun.backends.docker.ports import PortOps
from dtrun.backends.docker.volumes import VolumeOps
from dtrun.errors import BackendError, DtrunError, NotFound, ResourceError

if TYPE_CHECKING:
    from dtrun.backends.docker.endpoint import Endpoint
    from dtrun.backends.docker.hostinfo import HostInfo
    from dtrun.engine.scheduler import Admission
    from dtrun.plan import Job
    from dtrun.spec.models import Gpu, Resources


class DockerBackend(LazyClient, VolumeOps, ImageOps, CodeVolumeOps, PortOps):
    def __init__(self, client: Any = None, host: str = "", *, endpoint: Endpoint | None = None,
                 probe_images: list[str] | None = None, connect: Callable[[], Any] | None = None) -> None:
        """`client`: the Engine API client (engineapi/), connected; or `connect`, which makes one on first use."""
        LazyClient.__init__(self, client, connect)
        self.host = host
        self.endpoint = endpoint
        #: images to run `nvidia-smi` in when the host's GPUs must be listed (first present wins)
        self.probe_images = probe_images or ["debian:bookworm-slim"]
        self._info: dict[str, Any] | None = None
        self._host_info: HostInfo | None = None

    @property
    def cli_host(self) -> str | None:  # type: ignore[override]
        """DOCKER_HOST for docker CLI subprocesses (builds): an ssh host's local tunnel when there is one;
        None for an endpoint from a Docker context, which the CLI then picks itself, with its TLS files."""
        tunnel = getattr(self.client, "_dtrun_tunnel", None)
        if tunnel is not None:
            return f"unix://{tunnel.socket}"
        if self.endpoint is not None and self.endpoint.source.startswith("Docker context"):
            return None
        return self.host if "://" in self.host else None

    @property
    def info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = self.client.info()
        return self._info

    def warm_up(self) -> None:
        """`/info`, on `connect_soon`'s thread: the run's first job checks the host against it
        (`check_resources`), and the daemon takes 5-20 ms to answer it, hidden there behind the spec and
        the snapshot instead of spent on the job's way to its container."""
        self.info  # noqa: B018 - asks once, kept

    def host_info(self, refresh: bool = False) -> HostInfo:
        """CPUs, memory, runtimes and GPUs of the host (GPUs cached per daemon, see hostinfo.py)."""
        if self._host_info is None or refresh:
            from dtrun.backends.docker.hostinfo import host_info

            self._host_info = host_info(self.client, self.host, images=self.probe_images, refresh=refresh)
        return self._host_info

    def driver_version(self) -> str | None:
        """The host's NVIDIA driver (the oldest, if GPUs differ), or None where it has no GPU runtime.

        GPU images check it against their CUDA version before building (dtrun.images.cuda).
        """
        if "nvidia" not in (self.info.get("Runtimes") or {}):
            return None
        drivers = sorted({g.driver for g in self.host_info().gpus if g.driver},
                         key=lambda v: [int(p) if p.isdigit() else 0 for p in v.split(".")])
        return drivers[0] if drivers else None

    def host_cpus(self) -> int | None:
        try:
            return int(self.info.get("NCPU") or 0) or os.cpu_count()
        except Exception:  # the limit falls back to this machine's CPUs
            return os.cpu_count()

    # -- checks before anything starts ------------------------------------------------------------
    def check_reachable(self) -> None:
        """Connect now (the client is otherwise made on first use): `DockerUnavailable` if nothing answers."""
        self.client  # noqa: B018 - connecting is the check

    def check_resources(self, workflow: str, resources: Resources, nodes: int = 1) -> None:
        """Refuse, before anything is built or started, a job this host can never run (all `nodes` of it)."""
        from dtrun.backends.docker.resources import check_resources

        check_resources(self, workflow, resources, nodes)

    def admission(self, run: str) -> Admission:
        """Whether a ready job's GPUs are free now (label-based claims, see gpus.py). A job without GPUs
        is admitted at once: nothing is imported or asked of the host for it (a cache hit's run)."""
        checks: list[Admission] = []

        def admit(job: Job, running: list[Job]) -> bool:
            if not job.resources.gpu_count:
                return True
            if not checks:
                from dtrun.backends.docker.gpus import gpu_admission

                checks.append(gpu_admission(self, run))
            return checks[0](job, running)

        return admit

    # -- containers -----------------------------------------------------------------------------------
    def submit(self, spec: ContainerSpec, gpu: Gpu | None = None, *, interruptible: bool = False,
               notify: Output = lambda m: None) -> Any:
        """A created (not started) container; GPU jobs get specific GPUs, claimed by label (gpus.py).

        A multi-node job (`spec.torchrun`) is N containers answering as one handle (nodes.py)."""
        if spec.torchrun is not None and spec.torchrun.nodes > 1:
            from dtrun.backends.docker.nodes import submit_group

            return submit_group(self, spec, gpu, interruptible=interruptible, notify=notify)
        if not spec.gpus:
            return self.create(spec)
        from dtrun.backends.docker.gpus import create_with_gpus

        return create_with_gpus(self, spec, gpu, self.host_info(), interruptible=interruptible, notify=notify)

    def create(self, spec: ContainerSpec) -> Any:
        from dtrun.backends.docker.engineapi import errors as api_errors
        from dtrun.backends.docker.engineapi.create import DeviceRequest, Mount

        mounts = [Mount(target=m.target, source=m.volume, type="volume", read_only=m.read_only)
                  for m in spec.mounts]
        kwargs: dict[str, Any] = {}
        if spec.gpu_ids:
            kwargs["device_requests"] = [DeviceRequest(device_ids=list(spec.gpu_ids), capabilities=[["gpu"]])]
        elif spec.gpus:
            kwargs["device_requests"] = [DeviceRequest(count=spec.gpus, capabilities=[["gpu"]])]
        env = dict(spec.env)
        if spec.ports:
            kwargs["ports"] = {f"{FIRST_PORT + i}/tcp": self._bind(spec) for i in range(spec.ports)}
            env.update({f"PORT_{i}": str(FIRST_PORT + i) for i in range(spec.ports)})
        if spec.memory:
            kwargs["mem_limit"] = spec.memory
        if spec.shm_size:
            kwargs["shm_size"] = spec.shm_size
        if spec.cpus:
            kwargs["nano_cpus"] = int(spec.cpus * 1e9)
        try:
            return self.client.containers.create(
                spec.image, command=spec.command, entrypoint=spec.entrypoint, environment=env,
                working_dir=spec.working_dir, labels=spec.labels, name=spec.name, mounts=mounts,
                init=True, detach=True, **kwargs)
        except api_errors.APIError as exc:
            raise BackendError(f"Docker refused to create the container {spec.name}: {explanation(exc)}") \
                from None

    def put_archive(self, handle: Any, path: str, data: IO[bytes] | bytes) -> None:
        if isinstance(handle, NodeGroup):  # every node gets the code and files (each has its own disk)
            content = data if isinstance(data, bytes) else data.read()
            for member in handle.members:
                self.put_archive(member, path, content)
            return
        if not handle.put_archive(path, data):
            raise DtrunError(f"copying files into {handle.name}:{path} failed")

    def put_file(self, handle: Any, path: str, content: bytes, mode: int = 0o444) -> None:
        """One file into the container's filesystem (e.g. a step's output file)."""
        from dtrun.store.archive import under

        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(path.strip("/").rsplit("/", 1)[-1])
            info.size, info.mode = len(content), mode
            tar.addfile(info, io.BytesIO(content))
        self.put_archive(handle, "/", under(path.strip("/").rsplit("/", 1)[0], buffer.getvalue()))

    def start(self, handle: Any) -> None:
        from dtrun.backends.docker.engineapi import errors as api_errors

        if isinstance(handle, NodeGroup):
            from dtrun.backends.docker.nodes import start_group

            return start_group(self, handle)
        try:
            handle.start()
        except api_errors.APIError as exc:
            text = explanation(exc)
            if "could not select device driver" in text:
                raise ResourceError(f"the Docker host {self.host} cannot give this job a GPU: {text}",
                                    hint="install the NVIDIA Container Toolkit on that host") from None
            raise BackendError(f"starting {handle.name} failed: {text}") from None

    def logs(self, handle: Any, *, follow: bool = True, since: float | None = None,
             timestamps: bool = False) -> Iterator[bytes]:
        """The job's output as it comes; with `timestamps`, each line starts with its RFC 3339 time."""
        from dtrun.backends.docker.engineapi import errors as api_errors

        if isinstance(handle, NodeGroup):
            from dtrun.backends.docker.nodes import group_logs

            yield from group_logs(self, handle, follow=follow, since=since, timestamps=timestamps)
            return
        kwargs: dict[str, Any] = {"stream": True, "follow": follow, "stdout": True, "stderr": True,
                                  "timestamps": timestamps}
        if since is not None:
            kwargs["since"] = since
        from dtrun.backends.docker.restart import is_connection_lost

        try:
            yield from self.client.api.logs(handle.id, **kwargs)
        except api_errors.NotFound:
            raise NotFound(f"the container {handle.name} is gone") from None
        except Exception as exc:
            if not is_connection_lost(exc):
                raise
            # the daemon went away (restarted?): the stream ends here; `wait` finds out what happened,
            # and the engine reads the whole log again after the exit (engine/logs.py, `catch_up`)

    def wait(self, handle: Any) -> Exit:
        """The container's exit (a node group's: all of its nodes'); a daemon that goes away meanwhile is
        waited for (restart.py)."""
        if isinstance(handle, NodeGroup):
            from dtrun.backends.docker.nodes import wait_group

            return wait_group(self, handle)
        from dtrun.backends.docker.restart import SHUTDOWN_EXITS, exit_after_loss, going_away, is_connection_lost

        while True:
            try:
                result = handle.wait()
                # exit 0 says all there is to say; any other is inspected (killed for memory? by a shutdown?)
                state = {} if result.get("StatusCode") == 0 else self.client.api.inspect_container(handle.id)["State"]
                code = int(result.get("StatusCode", state.get("ExitCode", 1)))
                lost = code in SHUTDOWN_EXITS and going_away(self.client, handle)
            except Exception as exc:
                if not is_connection_lost(exc):
                    raise
                lost = True
            if lost:
                found = exit_after_loss(self.client, self.host, handle)
                if found is None:  # the connection blipped; the job still runs
                    continue
                return found  # type: ignore[no-any-return]
            return Exit(code=code, oom_killed=bool(state.get("OOMKilled")))

    def get_archive(self, handle: Any, path: str) -> Iterator[bytes] | None:
        """The tar stream of `path` in the container, or None if the path does not exist."""
        from dtrun.backends.docker.engineapi import errors as api_errors

        handle = handle.lead if isinstance(handle, NodeGroup) else handle  # outputs come from node 0
        from dtrun.backends.docker.restart import await_daemon, is_connection_lost

        for attempt in (1, 2):
            try:
                stream, _ = handle.get_archive(path, chunk_size=1 << 18)
                return stream  # type: ignore[no-any-return]
            except api_errors.NotFound:
                return None
            except Exception as exc:
                shutting = "database not open" in str(exc) or "shutting down" in str(exc)
                if attempt == 1 and (is_connection_lost(exc) or shutting):
                    await_daemon(self.client, self.host, handle)  # a restarting daemon: once more when it is back
                    continue
                if not (is_connection_lost(exc) or shutting):
                    raise
                raise BackendError(f"the Docker daemon ({self.host}) did not answer while {path} was copied out of "
                               f"{handle.name}: {exc.__class__.__name__}",
                               hint="once the daemon is back, `dtrun status` saves the outputs from the "
                                    "kept container") from None
        return None

    def node_handle(self, handle: Any, rank: int) -> Any:
        """A node's container, for an artifact saved from that node (`artifacts: [{path, node}]`)."""
        members = handle.members if isinstance(handle, NodeGroup) else [handle]
        if not 0 <= rank < len(members):
            raise BackendError(f"job {handle.name} has no node {rank} (it ran on {len(members)})")
        return members[rank]

    def local_path(self, handle: Any, path: str) -> Path | None:
        from dtrun.backends.docker.localpath import local_path

        return local_path(self, handle.lead if isinstance(handle, NodeGroup) else handle, path)

    def stop(self, handle: Any, grace: int = 10) -> None:
        def stop(member: Any) -> None:
            with ignored():
                member.stop(timeout=grace)

        threads = [threading.Thread(target=stop, args=(m,), daemon=True) for m in _members(handle)]
        for thread in threads:  # a multi-node job's nodes all at once, each with the whole grace period
            thread.start()
        for thread in threads:
            thread.join()

    def kill(self, handle: Any) -> None:
        for member in _members(handle):
            with ignored():
                member.kill()

    def remove(self, handle: Any) -> None:
        if isinstance(handle, NodeGroup):
            from dtrun.backends.docker.nodes import remove_group

            return remove_group(self, handle)
        with ignored():
            handle.remove(force=True)

    def was_preempted(self, name: str) -> str | None:
        from dtrun.backends.docker.gpus import was_preempted

        return was_preempted(self, name)

    # -- finding what runs ------------------------------------------------------------------------------
    def find(self, labels: dict[str, str]) -> list[Any]:
        """Every container (running or not) carrying all of `labels`."""
        from dtrun.backends.docker.nodes import find_groups

        selector = [f"{k}={v}" if v else k for k, v in labels.items()]
        return find_groups(self, list(self.client.containers.list(all=True, filters={"label": selector})))

    def get(self, name: str) -> Any | None:
        from dtrun.backends.docker.engineapi import errors as api_errors

        try:
            return self.client.containers.get(name)
        except api_errors.NotFound:
            from dtrun.backends.docker.nodes import load_group

            return load_group(self, name)  # a multi-node job is known by its group's name

    def phase(self, handle: Any) -> str:
        if isinstance(handle, NodeGroup):  # running while any node runs
            phases = [self.phase(m) for m in handle.members]
            return RUNNING if RUNNING in phases else CREATED if all(p == CREATED for p in phases) else EXITED
        status = str(handle.status)
        if status in ("running", "restarting", "paused"):
            return RUNNING
        return CREATED if status == "created" else EXITED

    def claim(self, handle: Any) -> bool:
        """Take an exited container for collection; False if another process took it (the rename is
        atomic on the daemon, so only one reconciling process wins)."""
        from dtrun.backends.docker.engineapi import errors as api_errors

        handle = handle.lead if isinstance(handle, NodeGroup) else handle
        try:
            handle.rename(f"{handle.name}-collecting")
        except api_errors.APIError:
            return False
        return True


def _members(handle: Any) -> list[Any]:
    return list(handle.members) if isinstance(handle, NodeGroup) else [handle]


__all__ = ["LABEL", "DockerBackend"]
