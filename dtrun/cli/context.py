"""Building the pieces a command needs (project, spec, store, backend) in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dtrun.config import Settings, load_settings

if TYPE_CHECKING:
    from dtrun.backends.docker import DockerBackend
    from dtrun.backends.endpoint import Endpoint
    from dtrun.snapshot import Snapshot
    from dtrun.spec import Project, Spec
    from dtrun.store import Store


@dataclass
class Context:
    settings: Settings
    project: Project
    host: str | None = None

    @classmethod
    def here(cls, host: str | None = None, start: Path | None = None) -> Context:
        from dtrun.spec import find_project

        return cls(settings=load_settings(), project=find_project(start), host=host)

    def spec(self) -> Spec:
        from dtrun.spec import load_spec

        return load_spec(self.project)

    def snapshot(self) -> Snapshot:
        from dtrun.snapshot import take_snapshot

        return take_snapshot(self.project.root, self.project.git_root)

    def store(self, repo: str) -> Store:
        from dtrun.store import Store

        return Store(self.settings.store, repo)

    def backend(self) -> DockerBackend:
        from dtrun.backends.connection import connect
        from dtrun.backends.docker import DockerBackend
        from dtrun.images.manager import DEFAULT_CPU_BASE

        endpoint = self.endpoint()
        images = [i for i in (self.settings.gpu_base_image, self.settings.base_image, DEFAULT_CPU_BASE) if i]
        return DockerBackend(connect(endpoint), endpoint.url, endpoint=endpoint, probe_images=images)

    def endpoint(self) -> Endpoint:
        """`--host`, the config's `host`, DOCKER_HOST, the current Docker context, the default socket."""
        from dtrun.backends.endpoint import resolve

        return resolve(self.host, self.settings.host)
