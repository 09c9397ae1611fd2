"""An in-memory `Backend` for the engine's unit tests: no Docker, scripted jobs, real timing.

A job's command names a script (`["job", NAME]`); `FakeBackend.scripts[NAME]` says what it prints, how
long it runs and how it exits. Containers "run" in threads; logs are timestamped like Docker's; stop and
kill end them with 143 and 137. GPUs come from a made-up inventory and are claimed per container.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from dtrun.backends.base import (
    CREATED,
    EXITED,
    RUNNING,
    ContainerSpec,
    Credentials,
    Exit,
    ImageInfo,
    Output,
    PublishedPort,
    VolumeMount,
)
from dtrun.config import Settings
from dtrun.errors import ResourceError
from dtrun.images.spec import ImageSpec
from dtrun.plan import Job
from dtrun.spec.models import Gpu, Resources


@dataclass
class Script:
    output: bytes = b""
    seconds: float = 0.0
    exit: int = 0


@dataclass
class FakeContainer:
    name: str
    labels: dict[str, str]
    spec: ContainerSpec
    gpus: list[str] = field(default_factory=list)
    status: str = CREATED
    code: int | None = None
    started: float = 0.0
    ended: float = 0.0
    lines: list[bytes] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


def _gpus(job: Job) -> int:
    """The GPUs a job holds on the host: its request on each of its nodes (all of them run here)."""
    return job.resources.gpu_count * (job.torchrun.nodes if job.torchrun is not None else 1)


def stamp() -> bytes:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()


class FakeBackend:
    host = "fake://local"

    def __init__(self, scripts: dict[str, Script] | None = None, gpus: int = 0) -> None:
        self.scripts = scripts or {}
        self.inventory = [f"GPU-fake-{i}" for i in range(gpus)]
        self.containers: dict[str, FakeContainer] = {}
        self.volumes: set[str] = set()
        self.lock = threading.Lock()
        self.history: list[FakeContainer] = []
        self.pulls: list[tuple[str, Credentials | None]] = []

    # -- capacity ---------------------------------------------------------------------------------------
    def check_reachable(self) -> None:
        """The fake host always answers."""

    def check_resources(self, workflow: str, resources: Resources, nodes: int = 1) -> None:
        if resources.gpu_count * nodes > len(self.inventory):
            raise ResourceError(f"workflow '{workflow}' asks for {resources.gpu_count * nodes} GPU(s), the host "
                                f"has {len(self.inventory)}")

    def _busy(self) -> set[str]:
        return {g for c in self.containers.values() if c.status != EXITED for g in c.gpus}

    def admission(self, run: str) -> Callable[[Job, list[Job]], bool]:
        def admit(job: Job, running: list[Job]) -> bool:
            wanted = sum(_gpus(j) for j in running) + _gpus(job)
            return _gpus(job) == 0 or wanted <= len(self.inventory)

        return admit

    def host_cpus(self) -> int | None:
        return 4

    def driver_version(self) -> str | None:
        return None

    # -- images -----------------------------------------------------------------------------------------
    def ensure_image(self, spec: ImageSpec, settings: Settings, *, output: Output, rebuild: str = "",
                     step: Output | None = None, say: Output | None = None) -> tuple[str, bool]:
        return spec.user_image or "fake/image", False

    def image(self, ref: str) -> ImageInfo | None:
        return ImageInfo(id=f"sha256:{ref}")

    def pull_image(self, ref: str, auth: Credentials | None = None) -> ImageInfo:
        self.pulls.append((ref, auth))
        return ImageInfo(id=f"sha256:{ref}")

    def build_image(self, *, dockerfile: str, context: dict[str, bytes], tag: str, labels: dict[str, str],
                    output: Output) -> None:
        output(f"built {tag}")

    # -- volumes ----------------------------------------------------------------------------------------
    def create_volume(self, name: str, labels: dict[str, str]) -> str:
        self.volumes.add(name)
        return name

    def remove_volume(self, name: str) -> None:
        self.volumes.discard(name)

    def materialize_once(self, volume: str, image: str, labels: dict[str, str],
                         open_tar: Callable[[], IO[bytes]], *, stale_after: float = 600.0) -> bool:
        fresh = volume not in self.volumes
        self.volumes.add(volume)
        return fresh

    def ca_bundle_mount(self, ca: Path, image: str) -> tuple[VolumeMount, dict[str, str]]:
        return VolumeMount("fake-ca", "/etc/dtrun", read_only=True), {}

    # -- one job ----------------------------------------------------------------------------------------
    def submit(self, spec: ContainerSpec, gpu: Gpu | None = None, *, interruptible: bool = False,
               notify: Output = lambda m: None) -> FakeContainer:
        with self.lock:
            free = [g for g in self.inventory if g not in self._busy()]
            count = spec.gpus
            if count > len(free):
                raise ResourceError(f"no free GPU for {spec.name}")
            container = FakeContainer(spec.name, dict(spec.labels), spec, gpus=free[:count])
            self.containers[spec.name] = container
            self.history.append(container)
        return container

    def put_archive(self, handle: Any, path: str, data: IO[bytes] | bytes) -> None:
        pass

    def put_file(self, handle: Any, path: str, content: bytes, mode: int = 0o444) -> None:
        pass

    def start(self, handle: FakeContainer) -> None:
        script = self.scripts[(handle.spec.command or ["job", "?"])[-1]]
        handle.status, handle.started = RUNNING, time.monotonic()

        def work() -> None:
            for line in script.output.splitlines(keepends=True):
                handle.lines.append(stamp() + b" " + line)
            if not handle.done.wait(script.seconds):
                self._end(handle, script.exit)

        threading.Thread(target=work, daemon=True).start()

    def _end(self, handle: FakeContainer, code: int) -> None:
        with self.lock:
            if handle.status == EXITED:
                return
            handle.status, handle.code, handle.ended = EXITED, code, time.monotonic()
        handle.done.set()

    def published_ports(self, handle: Any) -> list[PublishedPort]:
        return []

    def forward_ports(self, ports: list[PublishedPort]) -> tuple[list[PublishedPort], Callable[[], None]]:
        return ports, lambda: None

    def logs(self, handle: FakeContainer, *, follow: bool = True, since: float | None = None,
             timestamps: bool = False) -> Iterator[bytes]:
        sent = 0
        while True:
            while sent < len(handle.lines):
                line = handle.lines[sent]
                sent += 1
                yield line if timestamps else line.split(b" ", 1)[1]
            if (not follow or handle.done.wait(0.02)) and sent >= len(handle.lines):
                return

    def wait(self, handle: FakeContainer) -> Exit:
        handle.done.wait()
        return Exit(code=handle.code or 0)

    def node_handle(self, handle: Any, rank: int) -> Any:
        assert rank == 0, "the fake backend runs one-node jobs"
        return handle

    def get_archive(self, handle: Any, path: str) -> Iterator[bytes] | None:
        return None

    def local_path(self, handle: Any, path: str) -> Path | None:
        return None

    def stop(self, handle: FakeContainer, grace: int = 10) -> None:
        self._end(handle, 143)

    def kill(self, handle: FakeContainer) -> None:
        self._end(handle, 137)

    def remove(self, handle: FakeContainer) -> None:
        with self.lock:
            self.containers.pop(handle.name, None)

    def was_preempted(self, name: str) -> str | None:
        return None

    # -- finding what runs ------------------------------------------------------------------------------
    def find(self, labels: dict[str, str]) -> list[FakeContainer]:
        with self.lock:
            return [c for c in self.containers.values()
                    if all(c.labels.get(k) == v or (not v and k in c.labels) for k, v in labels.items())]

    def get(self, name: str) -> FakeContainer | None:
        return self.containers.get(name)

    def phase(self, handle: FakeContainer) -> str:
        return handle.status

    def claim(self, handle: FakeContainer) -> bool:
        with self.lock:
            if handle.labels.get("claimed"):
                return False
            handle.labels["claimed"] = "1"
            return True
