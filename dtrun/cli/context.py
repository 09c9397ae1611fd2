"""Building the pieces a command needs (project, spec, store, backend) in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dtrun.config import Settings, load_settings

if TYPE_CHECKING:
    from dtrun.backends.base import Backend
    from dtrun.backends.docker import DockerBackend
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

    def backend(self) -> Backend:
        """The configured backend, built the one way there is (dtrun.backends.registry)."""
        from dtrun.backends.registry import create_backend

        return create_backend(self.settings, self.host)


def daemon_backend(host: str | None) -> DockerBackend:
    """For the commands that manage a Docker host itself (images, volumes, hosts, action publish)."""
    from dtrun.backends.docker import DockerBackend
    from dtrun.backends.registry import create_backend
    from dtrun.errors import DtrunError

    settings = load_settings()
    backend = create_backend(settings, host)
    if not isinstance(backend, DockerBackend):
        raise DtrunError(f"this command manages a Docker host, and the configured backend is {settings.backend}",
                         hint="pass --host with a Docker endpoint, or `dtrun config set backend docker`")
    return backend
