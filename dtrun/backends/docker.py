"""The Docker backend: a job as a container on a local or remote daemon, through the API only.

Code goes in and outputs come out as tar streams (`put_archive`/`get_archive`) through named
volumes, never bind mounts of client paths: the daemon may be on another machine (design principle 1).
Everything created is labelled and named from the run and job, so a later command can find it.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from dtrun.errors import DtrunError, ResourceError

if TYPE_CHECKING:
    from dtrun.backends.endpoint import Endpoint
    from dtrun.backends.hostinfo import HostInfo
    from dtrun.spec.models import Resources

LABEL = "dev.dtrun"
CA_DIR = "/etc/dtrun"
CA_PATH = f"{CA_DIR}/ca.crt"
#: The variables that point the usual clients (OpenSSL, pip, requests, curl, node) at a CA bundle.
CA_ENV = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
#: `ports: N` -> the job listens on PORT_0..PORT_{N-1} = FIRST_PORT..FIRST_PORT+N-1 inside its container;
#: Docker publishes each on a free port of the host.
FIRST_PORT = 8000


@dataclass(frozen=True)
class VolumeMount:
    volume: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
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


@dataclass(frozen=True)
class PublishedPort:
    name: str  # PORT_0
    container_port: int
    host_port: int
    url: str  # where the client reaches it


@dataclass(frozen=True)
class Exit:
    code: int
    oom_killed: bool = False


class DockerBackend:
    #: issue 14: publish job ports on all of the host's interfaces (else on 127.0.0.1 only)
    publish_all: bool = False

    def __init__(self, client: Any, host: str, *, endpoint: Endpoint | None = None,
                 probe_images: list[str] | None = None) -> None:
        self.client = client
        self.host = host
        self.endpoint = endpoint
        #: images to run `nvidia-smi` in when the host's GPUs must be listed (first present wins)
        self.probe_images = probe_images or ["debian:bookworm-slim"]
        self._info: dict[str, Any] | None = None
        self._host_info: HostInfo | None = None

    @property
    def cli_host(self) -> str | None:
        """DOCKER_HOST for docker CLI subprocesses (builds): an ssh host's local tunnel when there is one;
        None for an endpoint from a Docker context, which the CLI then picks itself, with its TLS files."""
        tunnel = getattr(self.client, "_dtrun_tunnel", None)
        if tunnel is not None:
            return f"unix://{tunnel.socket}"
        if self.endpoint is not None and self.endpoint.source.startswith("Docker context"):
            return None
        return self.host

    @property
    def info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = self.client.info()
        return self._info

    def host_info(self, refresh: bool = False) -> HostInfo:
        """CPUs, memory, runtimes and GPUs of the host (GPUs cached per daemon, see backends/hostinfo.py)."""
        if self._host_info is None or refresh:
            from dtrun.backends.hostinfo import host_info

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

    # -- checks before anything starts ------------------------------------------------------------
    def check_resources(self, workflow: str, resources: Resources) -> None:
        """Refuse, before anything is built or started, a job this host can never run."""
        from dtrun.backends.resources import check_resources

        check_resources(self, workflow, resources)

    # -- volumes --------------------------------------------------------------------------------------
    def create_volume(self, name: str, labels: dict[str, str]) -> str:
        import docker.errors

        try:
            self.client.volumes.get(name)
        except docker.errors.NotFound:
            self.client.volumes.create(name=name, labels=labels)
        return name

    def remove_volume(self, name: str) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.APIError):
            self.client.volumes.get(name).remove(force=True)

    def ca_bundle_mount(self, ca: Path, image: str) -> tuple[VolumeMount, dict[str, str]]:
        """The host's CA bundle for a job, and the environment pointing clients at it.

        Materialised once per daemon into a volume keyed by its content and mounted read-only, like
        a dep's artifacts: no copy per job, and the job cannot alter what it trusts. The volume is
        shared infrastructure, so it carries no run's or store's label.
        """
        import hashlib

        data = ca.read_bytes()
        volume = f"dtrun-ca-{hashlib.sha256(data).hexdigest()[:24]}"

        def tar() -> IO[bytes]:
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as archive:
                info = tarfile.TarInfo("ca.crt")
                info.size, info.mode = len(data), 0o444
                archive.addfile(info, io.BytesIO(data))
            buffer.seek(0)
            return buffer

        self.materialize_once(volume, image, {LABEL: "1", f"{LABEL}.ca": "1"}, tar)
        return VolumeMount(volume, CA_DIR, read_only=True), dict.fromkeys(CA_ENV, CA_PATH)

    def materialize_once(self, volume: str, image: str, labels: dict[str, str],
                         open_tar: Callable[[], IO[bytes]], *, stale_after: float = 600.0) -> bool:
        """Fill `volume` once with a stored artifact (dep artifacts are copied once per daemon), safely
        when several clients fill the same volume at the same time.

        The fill container's name is the lock: creating it fails with a conflict while another
        client fills the volume, and this one then waits for it to finish instead of destroying its
        work. A fill container older than `stale_after` seconds belongs to a client that died; its
        half-filled volume is replaced. True if this call copied the data, False if it was there.
        """
        import time

        import docker.errors
        from docker.types import Mount

        filler = f"{volume}-fill"
        while True:
            try:
                self.client.volumes.get(volume)
                exists = True
            except docker.errors.NotFound:
                exists = False
            try:
                holder = self.client.containers.get(filler)
            except docker.errors.NotFound:
                holder = None
            if holder is None and exists:
                return False
            if holder is not None:
                created = holder.attrs.get("Created", "")
                age = time.time() - _parse_created(created) if created else stale_after + 1
                if age <= stale_after:
                    time.sleep(0.2)
                    continue
                with contextlib.suppress(docker.errors.APIError):
                    holder.remove(force=True)
                with contextlib.suppress(docker.errors.APIError):
                    self.client.volumes.get(volume).remove(force=True)
                continue
            try:
                container = self.client.containers.create(
                    image, command=["true"], entrypoint=[], name=filler, labels=labels, network_disabled=True,
                    mounts=[Mount(target="/data", source=volume, type="volume", labels=labels)])
            except docker.errors.APIError as exc:
                if getattr(exc, "status_code", None) == 409:  # another client took the lock just now
                    continue
                raise DtrunError(f"cannot prepare the dependency volume {volume}: {exc.explanation or exc}") \
                    from None
            try:
                with open_tar() as data:
                    if not container.put_archive("/data", data):
                        raise DtrunError(f"copying a dependency into the volume {volume} failed")
            except BaseException:
                with contextlib.suppress(docker.errors.APIError):
                    container.remove(force=True)
                with contextlib.suppress(docker.errors.APIError):
                    self.client.volumes.get(volume).remove(force=True)
                raise
            container.remove(force=True)
            return True

    # -- containers -----------------------------------------------------------------------------------
    def create(self, spec: ContainerSpec) -> Any:
        import docker.errors
        from docker.types import DeviceRequest, Mount

        mounts = [Mount(target=m.target, source=m.volume, type="volume", read_only=m.read_only)
                  for m in spec.mounts]
        kwargs: dict[str, Any] = {}
        if spec.gpu_ids:
            kwargs["device_requests"] = [DeviceRequest(device_ids=list(spec.gpu_ids), capabilities=[["gpu"]])]
        elif spec.gpus:
            kwargs["device_requests"] = [DeviceRequest(count=spec.gpus, capabilities=[["gpu"]])]
        env = dict(spec.env)
        if spec.ports:
            # issue 14: on a local daemon, published on the host's loopback only, unless `--publish-all` /
            # `publish_all: true` (dtrun/cli/run_cmd.py sets `publish_all`). A tcp:// or ssh:// daemon's
            # loopback is out of the client's reach until ports are forwarded over ssh, so there they stay on
            # all interfaces. docker-py reads ("IP",) as "this IP, any free port".
            local = self.endpoint is None or self.endpoint.is_local
            bind = ("127.0.0.1",) if local and not self.publish_all else None
            kwargs["ports"] = {f"{FIRST_PORT + i}/tcp": bind for i in range(spec.ports)}
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
        except docker.errors.APIError as exc:
            raise DtrunError(f"Docker refused to create the container {spec.name}: {exc.explanation or exc}") \
                from None

    def put_archive(self, container: Any, path: str, data: IO[bytes] | bytes) -> None:
        if not container.put_archive(path, data):
            raise DtrunError(f"copying files into {container.name}:{path} failed")

    def put_file(self, container: Any, path: str, content: bytes, mode: int = 0o444) -> None:
        """One file into the container's filesystem (e.g. the CA bundle), read-only by its mode."""
        import posixpath

        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                info = tarfile.TarInfo("/".join(parts[:i]))
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            info = tarfile.TarInfo(posixpath.join(*parts))
            info.size, info.mode = len(content), mode
            tar.addfile(info, io.BytesIO(content))
        self.put_archive(container, "/", buffer.getvalue())

    def start(self, container: Any) -> None:
        import docker.errors

        try:
            container.start()
        except docker.errors.APIError as exc:
            text = str(exc.explanation or exc)
            if "could not select device driver" in text:
                raise ResourceError(f"the Docker host {self.host} cannot give this job a GPU: {text}",
                                    hint="install the NVIDIA Container Toolkit on that host") from None
            raise DtrunError(f"starting {container.name} failed: {text}") from None

    def published_ports(self, container: Any) -> list[PublishedPort]:
        """Where the client reaches the job's ports: the host's address (remote hosts) and the published port."""
        attrs = self.client.api.inspect_container(container.id)
        bindings = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
        address = self.endpoint.address if self.endpoint else "127.0.0.1"
        found = []
        for key, binds in bindings.items():
            port = int(key.split("/")[0])
            if not binds or port < FIRST_PORT:
                continue
            bind = next((b for b in binds if ":" not in b.get("HostIp", "")), binds[0])
            host_ip = bind.get("HostIp") or "0.0.0.0"
            where = address if host_ip in ("0.0.0.0", "::", "") else host_ip
            found.append(PublishedPort(f"PORT_{port - FIRST_PORT}", port, int(bind["HostPort"]),
                                       f"{where}:{bind['HostPort']}"))
        return sorted(found, key=lambda p: p.container_port)

    def logs(self, container: Any, *, follow: bool = True, since: float | None = None) -> Iterator[bytes]:
        kwargs: dict[str, Any] = {"stream": True, "follow": follow, "stdout": True, "stderr": True}
        if since is not None:
            kwargs["since"] = since
        yield from self.client.api.logs(container.id, **kwargs)

    def wait(self, container: Any) -> Exit:
        result = container.wait()
        state = self.client.api.inspect_container(container.id)["State"]
        return Exit(code=int(result.get("StatusCode", state.get("ExitCode", 1))),
                    oom_killed=bool(state.get("OOMKilled")))

    def get_archive(self, container: Any, path: str) -> Iterator[bytes] | None:
        """The tar stream of `path` in the container, or None if the path does not exist."""
        import docker.errors

        try:
            stream, _ = container.get_archive(path, chunk_size=1 << 20)
            return stream  # type: ignore[no-any-return]
        except docker.errors.NotFound:
            return None

    def local_path(self, container: Any, path: str) -> Path | None:
        """Where `path` of the container lies on this machine, if it is in a volume this client can read.

        Only for a daemon on a local unix socket; only through a path without symlinks (a link the
        job planted must not lead the client to its own files); only when no other mount lies inside
        the path. Callers fall back to `get_archive`.
        """
        if not self.host.startswith("unix://") or os.environ.get("DTRUN_NO_LOCAL_VOLUMES"):
            return None
        try:
            mounts = self.client.api.inspect_container(container.id).get("Mounts") or []
        except Exception:  # any doubt means: use the API
            return None
        best: tuple[str, str] | None = None
        for mount in mounts:
            dest = str(mount.get("Destination", "")).rstrip("/")
            if mount.get("Type") == "volume" and mount.get("Source") and (path == dest or path.startswith(dest + "/")) \
                    and (best is None or len(dest) > len(best[0])):
                best = (dest, str(mount["Source"]))
        if best is None:
            return None
        if any(str(m.get("Destination", "")).startswith(path.rstrip("/") + "/") for m in mounts):
            return None  # another mount inside `path`: only the daemon sees the merged tree
        dest, source = best
        root = Path(source)
        if not (os.access(root, os.R_OK | os.X_OK) and root.is_dir()):
            return None
        rel = os.path.relpath(path, dest) if path != dest else "."
        local = root / rel
        try:
            if os.path.lexists(local) and local.resolve() != root.resolve() / rel:
                return None
            if not os.path.lexists(local) and local.parent.resolve() != (root.resolve() / rel).parent:
                return None
        except OSError:
            return None
        return Path(os.path.normpath(local))

    def stop(self, container: Any, grace: int = 10) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.APIError):
            container.stop(timeout=grace)

    def kill(self, container: Any) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.APIError):
            container.kill()

    def remove(self, container: Any) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)


def _parse_created(text: str) -> float:
    """Docker's `Created` (RFC 3339 with nanoseconds) -> epoch seconds."""
    from datetime import datetime, timezone

    stamp = text.rstrip("Z").split(".")[0].split("+")[0]
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
