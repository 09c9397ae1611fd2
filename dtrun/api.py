"""dtrun's public Python API and its one composition root.

A `Session` builds settings, store, backend and engine once, for one project (a git repository) and one
backend host; the CLI and Python users call only it. Everything it reports goes to its listener as
`dtrun.engine.events.Event`s (the CLI renders them; by default they are dropped).

    import dtrun

    result = dtrun.run("train", project="path/to/repo")       # a shortcut for Session(...).run(...)
    print(result.exit_code, [j.state.value for j in result.jobs])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dtrun.engine.events import WARNING, Event, Listener, ignore

if TYPE_CHECKING:
    from dtrun.backends.base import Backend
    from dtrun.backends.docker import DockerBackend
    from dtrun.config import Settings
    from dtrun.engine.runner import Engine, RunResult
    from dtrun.engine.transfer import Found
    from dtrun.flows.compile import FlowResult
    from dtrun.images.host import ImageHost
    from dtrun.plan import Plan
    from dtrun.snapshot import Snapshot
    from dtrun.spec import Project, Spec
    from dtrun.store import ArtifactRecord, JobRecord, RunRecord, Store, TagRecord


class Session:
    """One project's runs on one backend. Cheap to create: the store, the backend (a connection) and the
    spec are built on first use, once."""

    def __init__(self, project: str | Path | None = None, *, host: str | None = None,
                 settings: Settings | None = None, listener: Listener = ignore,
                 backend: Backend | None = None) -> None:
        """`project`: a folder in the project's git repository (default: the current folder); `host`: where
        the backend runs jobs (default: the config's, DOCKER_HOST, ...); `backend`: one already built
        (tests, embedding), instead of the configured one."""
        from dtrun.config import load_settings

        self.root = Path(project).resolve() if project is not None else Path.cwd().resolve()
        self.host = host
        self.settings = settings or load_settings()
        self.listener = listener
        if backend is not None:
            self.__dict__["backend"] = backend

    def emit(self, event: Event) -> None:
        self.listener(event)

    # -- what the session is built from ----------------------------------------------------------------
    @cached_property
    def backend(self) -> Backend:
        """The configured backend (`backend:` in the config, docker by default), connected once."""
        from dtrun.backends.registry import create_backend

        return create_backend(self.settings, self.host)

    @cached_property
    def project(self) -> Project:
        from dtrun.spec import find_project

        return find_project(self.root)

    @cached_property
    def _repository(self) -> tuple[Path, str]:
        """The git repository the session's folder is in, and its id: asked of git once, for the store
        and the snapshot alike."""
        from dtrun.code.listing import find_git_root  # not in dtrun.spec: that package loads pydantic
        from dtrun.errors import ProjectError
        from dtrun.snapshot import _repo_id

        git_root = find_git_root(self.root)
        if git_root is None:
            raise ProjectError(f"{self.root} is not inside a git repository",
                               hint="run dtrun inside your project's repository: runs are kept per repository")
        return git_root, _repo_id(git_root, None)

    @cached_property
    def store(self) -> Store:
        """The store of the repository the project is in (runs are kept per repository)."""
        from dtrun.store import Store

        return Store(self.settings.store, self._repository[1])

    def spec(self, *, strict: bool = True) -> Spec:
        """The project's workflows. `strict=False` keeps the valid ones when another is broken (the
        broken files become warnings, see `Spec.warnings_for`); `dtrun validate` stays strict."""
        from dtrun.spec import load_spec

        return load_spec(self.project, strict=strict)

    def snapshot(self) -> Snapshot:
        from dtrun.snapshot import take_snapshot

        git_root, repo = self._repository  # the project's git root too: both look up from the same folder
        return take_snapshot(self.project.root, git_root, repo=repo)

    def snapshot_soon(self) -> Callable[[], Snapshot]:
        """`snapshot()` started in the background (`dtrun.snapshot.snapshot_soon`)."""
        from dtrun.snapshot import snapshot_soon

        git_root, repo = self._repository
        return snapshot_soon(self.project.root, git_root, repo=repo)

    def secrets(self) -> dict[str, str]:
        from dtrun.secrets import SecretStore

        return SecretStore(self.store.repo).values()

    def engine(self, snapshot: Snapshot, *, store: Store | None = None,
               secrets: dict[str, str] | None = None) -> Engine:
        from dtrun.engine.runner import Engine

        return Engine(self.settings, store or self.store, self.backend, snapshot, self.emit,
                      secrets=self.secrets() if secrets is None else secrets)

    def reconcile(self) -> None:
        """Settle the runs whose client is gone (cheap when there are none): done before reading state."""
        from dtrun.engine.reconcile import reconcile

        reconcile(self.store, lambda: self.backend, lambda: list(self.secrets().values()),
                  status=lambda m: self.emit(Event("status", m)))

    # -- workflows -------------------------------------------------------------------------------------
    def plan(self, workflow: str, *, variables: dict[str, str] | None = None, args: Sequence[str] = (),
             run_name: str | None = None, gpus: int | None = None) -> Plan:
        from dtrun.plan import build_plan

        if gpus is not None and gpus < 0:
            from dtrun.errors import DtrunError

            raise DtrunError(f"--gpus {gpus}: expected a number of GPUs, 0 or more", hint="e.g. --gpus 1")
        # issue 12: a broken workflow elsewhere does not block this one (its own errors still raise in `get`)
        return build_plan(self.spec(strict=False), workflow, variables=variables, run_args=args, run_name=run_name,
                          python_install=self.settings.python_install or "auto", gpus=gpus)

    def run(self, workflow: str, *, variables: dict[str, str] | None = None, args: Sequence[str] = (),
            tag: str | None = None, no_cache: bool = False, gpus: int | None = None,
            submitted: str | None = None, publish_all: bool = False) -> RunResult:
        """Run `workflow` (and the workflows it needs) to the end; `submitted` continues a recorded run
        (what a detached run's background process does). `publish_all`: the jobs' ports listen on all
        of the host's interfaces (as the `publish_all` setting), not only where this user reaches them."""
        from dtrun.names import new_run_name

        if no_cache:  # every job will need the host: a backend that connects on first use may start now
            connect_soon = getattr(self.backend, "connect_soon", None)
            if connect_soon is not None:
                connect_soon()
        snapshot = self.snapshot_soon()  # git walks the worktree while the workflows load
        self.spec(strict=False).get(workflow)
        record = self.store.load_run(submitted) if submitted else None
        name = record.name if record else new_run_name(self.store.run_names())
        plan = self.plan(workflow, variables=variables, args=args, run_name=name, gpus=gpus)
        self._publish_all(plan, publish_all, warn=record is None)
        if tag and not record:
            from dtrun.store.tags import check_tag_free

            check_tag_free(self.store, tag)
        if not record:
            self.store.check()  # a missing bucket or a full disk fails now, before anything is built
            self.reconcile()
        engine = self.engine(snapshot())
        return engine.run(plan, variables=variables, args=list(args), no_cache=no_cache, submitted=record,
                          name=name, tag=tag)

    def dry_run(self, workflow: str, *, variables: dict[str, str] | None = None, args: Sequence[str] = (),
                gpus: int | None = None) -> list[dict[str, Any]]:
        """The objects the backend would create for a run of `workflow` (secret values masked); nothing
        runs and no cluster is contacted. Only backends that create objects (Kubernetes) can say."""
        from dtrun.engine.dryrun import dry_run

        plan = self.plan(workflow, variables=variables, args=args, gpus=gpus)
        images = cast("ImageHost", getattr(self.backend, "builder", self.backend))  # agent backends: local Docker
        return dry_run(self.backend, plan, settings=self.settings, store=self.store, snapshot=self.snapshot(),
                       secrets=self.secrets(), images=images)

    def submit(self, workflow: str, *, variables: dict[str, str] | None = None, args: Sequence[str] = (),
               tag: str | None = None, gpus: int | None = None, publish_all: bool = False) -> RunRecord:
        """Record a run without running it (a detached run: a background process then runs it)."""
        from dtrun.names import new_run_name

        name = new_run_name(self.store.run_names())
        plan = self.plan(workflow, variables=variables, args=args, run_name=name, gpus=gpus)
        self._publish_all(plan, publish_all, warn=True)
        if tag:
            from dtrun.store.tags import check_tag_free

            check_tag_free(self.store, tag)
        self.store.check()
        self.reconcile()
        engine = self.engine(self.snapshot())
        # the host is asked now, by the process the user started: an unreachable daemon or a job the
        # host can never run fails this command, not the background process after it has returned
        engine.check_plan(plan)
        return engine.submit(plan, variables=variables, args=list(args), name=name, tag=tag)

    def _publish_all(self, plan: Plan, flag: bool, *, warn: bool) -> None:
        """Ports on all interfaces: said once, by the process the user started, when the plan has any."""
        if flag and not self.settings.publishes_all:
            from dataclasses import replace

            self.settings = replace(self.settings, publish_all="true")
        if warn and self.settings.publishes_all and any(job.ports for job in plan.jobs):
            why = "--publish-all" if flag else "the publish_all setting"
            self.emit(Event(WARNING, f"{why}: the job's ports listen on all of the host's interfaces; anyone "
                            "who reaches the host reaches them (dev environments still ask for their token)"))

    def resume(self, job_id: str) -> RunResult:
        """Run a stopped job again in its run, with the outputs it saved put back."""
        from dtrun.engine.lifecycle import check_resumable

        self.reconcile()
        run, jobs = self.find(job_id)
        run, record = check_resumable(self.store, job_id, run, jobs)
        plan = self.plan(record.workflow, variables=run.variables, args=run.args, run_name=run.name)
        self.emit(Event("status", f"resuming {record.workflow} (job {record.id}) of run {run.name}"))
        return self.engine(self.snapshot()).resume(plan, run, record)

    # -- any run (workflow or flow) --------------------------------------------------------------------
    def find(self, name: str) -> tuple[RunRecord | None, list[JobRecord]]:
        """A run name or a job id (or a unique prefix of one) -> (the run, if a run was named; its jobs)."""
        from dtrun.engine.lifecycle import find

        return find(self.store, name)

    def status(self, last: int | None = None) -> list[tuple[RunRecord, list[JobRecord]]]:
        """The unfinished runs (else the last finished one), or the `last` N, with their jobs."""
        from dtrun.engine.lifecycle import pick_runs

        self.reconcile()
        rows = [(run, self.store.load_jobs(run.jobs)) for run in pick_runs(self.store, last)]
        self._warn_skipped()
        return rows

    def _warn_skipped(self) -> None:
        """One warning per damaged record the store's listings passed over (see `Store.skip`)."""
        for message in self.store.skipped:
            self.emit(Event(WARNING, f"{message}; skipped"))
        self.store.skipped.clear()

    def stop(self, target: str, *, abort: bool = False) -> list[JobRecord]:
        """Stop (outputs saved) or abort a run or a job from anywhere; returns its jobs once settled."""
        from dtrun.engine.lifecycle import stop

        self.reconcile()
        _, jobs = self.find(target)
        return stop(self.store, self.backend, target, jobs, abort=abort, secrets=list(self.secrets().values()),
                    say=lambda m: self.emit(Event("status", m)))

    def logs(self, target: str, *, since: float | None = None, follow: bool = False) -> Iterator[bytes]:
        """The masked output of a run's jobs or of one job: stored once finished, live while running."""
        from dtrun.engine.lifecycle import job_logs

        self.reconcile()
        run, jobs = self.find(target)
        while follow and run is not None and not run.jobs and not run.state.finished:
            time.sleep(0.3)  # a detached run whose process has not recorded its jobs yet
            run = self.store.load_run(run.name)
            jobs = self.store.load_jobs(run.jobs)
        secrets = list(self.secrets().values())
        for job in jobs:
            yield from job_logs(self.store, lambda: self.backend, job, secrets, since=since, follow=follow)
        self._warn_skipped()

    def urls(self, job: JobRecord) -> dict[str, str]:
        """A running job's ports and app as this user reaches them (an app's token only from the 0600
        file on this client of the user who started it); {} for a job that is not running."""
        from dtrun.engine.addresses import job_urls

        return job_urls(lambda: self.backend, job)

    def wait_app_urls(self, run: str, alive: Callable[[], bool]) -> list[str]:
        """A detached run's dev environments' URL lines, once their apps answer (bounded)."""
        from dtrun.engine.addresses import wait_app_urls

        return wait_app_urls(self.store, run, alive)

    def attach(self, target: str) -> tuple[list[JobRecord], Callable[[], None]]:
        """Bring a running run's ports to this client (ssh forwards for an ssh:// host), say where they
        are as events; returns its jobs and what closes the forwards."""
        from dtrun.engine.addresses import attach

        self.reconcile()
        _, jobs = self.find(target)
        live = [j for j in jobs if not j.state.finished]
        if not live:
            from dtrun.errors import DtrunError

            raise DtrunError(f"{target} has finished: there is nothing to attach to",
                             hint="`dtrun status` shows what is still running")
        closes = attach(self.backend, self.store, live, lambda m: self.emit(Event("status", m)))

        def close() -> None:
            for each in closes:
                each()

        return jobs, close

    def artifacts(self, target: str) -> list[tuple[JobRecord, ArtifactRecord]]:
        """The artifacts of a run, a job or a tag."""
        from dtrun.engine.lifecycle import select_jobs

        return [(job, artifact) for job in select_jobs(self.store, target) for artifact in job.artifacts]

    def artifact_files(self, target: str) -> Found:
        """The artifacts of a run, a job or a tag, each with its file listing (its manifest)."""
        from dtrun.engine.lifecycle import select_jobs

        return [(job, m) for job in select_jobs(self.store, target) for m in self.store.manifests(job.output_id)]

    def download_artifacts(self, found: Found, output: Path, *,
                           advance: Callable[[str, int], None] = lambda p, n: None) -> int:
        """`artifact_files`' artifacts into `output`; the bytes downloaded (`advance(path, bytes)` on the way)."""
        from dtrun.engine.transfer import download

        return download(self.store, found, output, advance=advance)

    # -- tags ------------------------------------------------------------------------------------------
    def tags(self, repo: str | None = None) -> list[TagRecord]:
        """This repository's tags, or those of `repo` (owner/name)."""
        return self.store.tags(self.store.resolve_repo(repo) if repo else None)

    def tag_run(self, tag: str, run: str, *, replace: bool = False) -> TagRecord:
        """Name a finished run's artifacts `tag`."""
        from dtrun.store.tags import tag_run

        return tag_run(self.store, tag, run, replace=replace)

    def tag_upload(self, tag: str, paths: Sequence[Path], *, replace: bool = False,
                   uploaded: Callable[[ArtifactRecord], None] = lambda r: None) -> TagRecord:
        """Upload local folders as the tag `tag` (`uploaded` is told of each one as it is stored)."""
        from dtrun.engine.transfer import upload_tag

        return upload_tag(self.store, self.project.root, tag, list(paths), replace=replace, uploaded=uploaded)

    def tag_delete(self, tag: str) -> None:
        """Delete a tag (its run and artifacts stay)."""
        self.store.delete_tag(tag)

    # -- the Docker host itself ------------------------------------------------------------------------
    def docker(self) -> DockerBackend:
        """The backend as a Docker host, for the commands that manage one (images, volumes, hosts, action
        publish); a clear error when the configured backend is another kind."""
        from dtrun.backends.docker import DockerBackend
        from dtrun.errors import DtrunError

        backend = self.backend
        if not isinstance(backend, DockerBackend):
            raise DtrunError(f"this command manages a Docker host, and the configured backend is "
                             f"{self.settings.backend}", hint="pass --host with a Docker endpoint, or "
                             "`dtrun config set backend docker`")
        return backend

    # -- flows -----------------------------------------------------------------------------------------
    def flow_run(self, path: str | Path, *, secrets: dict[str, str] | None = None,
                 trigger: str = "manual", no_cache: bool = False) -> tuple[FlowResult, dict[str, Any]]:
        """Run a flow file on the same engine as workflows; its result and its JSON summary.
        `no_cache` runs every job and step even if an identical one ran before."""
        from dtrun.flows.session import run_flow

        return run_flow(self, Path(path), secrets or {}, trigger, no_cache)


def run(workflow: str, *, project: str | Path | None = None, host: str | None = None,
        variables: dict[str, str] | None = None, args: Sequence[str] = (), no_cache: bool = False,
        listener: Listener = ignore) -> RunResult:
    """Run a workflow of the project at `project` (default: the current folder) and wait for it."""
    return Session(project, host=host, listener=listener).run(workflow, variables=variables, args=args,
                                                              no_cache=no_cache)
