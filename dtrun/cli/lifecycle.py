"""What the run-managing commands (status, logs, stop, resume) share: the repository's store, a
reconcile before reading, and finding a run or a job by the name a user typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dtrun.backends.docker import DockerBackend
    from dtrun.cli.context import Context
    from dtrun.store import JobRecord, RunRecord, Store


@dataclass
class Repo:
    """The store of the repository the current folder is in; the Docker backend and the project's spec
    are loaded only by the commands that need them (`dtrun status` reads the store and nothing else)."""

    store: Store
    host: str | None = None
    _backend: DockerBackend | None = None
    _context: Context | None = None

    @classmethod
    def here(cls, host: str | None = None) -> Repo:
        from pathlib import Path

        from dtrun.config import load_settings
        from dtrun.errors import ProjectError
        from dtrun.snapshot import _repo_id
        from dtrun.store import Store

        here = Path.cwd().resolve()
        git_root = next((f for f in (here, *here.parents) if (f / ".git").exists()), None)
        if git_root is None:
            raise ProjectError(f"{here} is not inside a git repository",
                               hint="run dtrun inside your project's repository: runs are kept per repository")
        return cls(Store(load_settings().store, _repo_id(git_root, None)), host)

    @property
    def context(self) -> Context:
        if self._context is None:
            from dtrun.cli.context import Context

            self._context = Context.here(host=self.host)
        return self._context

    def backend(self) -> DockerBackend:
        if self._backend is None:
            from dtrun.backends.connection import connect, docker_host
            from dtrun.backends.docker import DockerBackend
            from dtrun.config import load_settings

            endpoint = docker_host(self.host or load_settings().host)
            self._backend = DockerBackend(connect(endpoint), endpoint or "unix:///var/run/docker.sock")
        return self._backend

    def secret_values(self) -> list[str]:
        from dtrun.secrets import SecretStore

        return list(SecretStore(self.store.repo).values().values())

    def reconcile(self) -> None:
        from dtrun.engine.reconcile import reconcile
        from dtrun.ui import say

        reconcile(self.store, self.backend, self.secret_values, status=say)

    def find(self, name: str) -> tuple[RunRecord | None, list[JobRecord]]:
        """A run name or a job id (or a unique prefix of one) -> (the run, if a run was named; its jobs)."""
        from dtrun.errors import NotFound

        if self.store.exists(self.store.run_path(name)):
            run = self.store.load_run(name)
            return run, self.store.load_jobs(run.jobs)
        if self.store.exists(self.store.job_path(name, "job.json")):
            return None, [self.store.load_job(name)]
        matches = [j for j in self.store.listdir(self.store.repo_path("jobs")) if j.startswith(name)]
        if len(name) >= 4 and len(matches) == 1:
            return None, [self.store.load_job(matches[0])]
        raise NotFound(f"no run or job named '{name}'" + (" (the prefix is ambiguous)" if len(matches) > 1 else ""),
                       hint="`dtrun status --last 10` lists recent runs and their job ids")


def display_state(store: Store, job: JobRecord) -> str:
    """A job's state as users should see it: an unfinished job asked to stop shows STOPPING/ABORTING."""
    if job.state.finished:
        return job.state.value
    from dtrun.engine import control

    action = control.requested(store, job.id)
    if action == control.ABORT:
        return "ABORTING"
    if action == control.STOP:
        return "STOPPING"
    return job.state.value
