"""The engine: runs a plan's jobs on a backend, records every state, saves every output.

One run: its record and one record per job are written first (SUBMITTED), then the scheduler starts
each job once the jobs it needs have succeeded (independent ones in parallel; a GPU job only when GPUs
are free for it, see `gpus.gpu_admission`). One job: image -> cache check -> container holding specific
GPUs (code in, secrets as env) -> logs streamed, masked and stored -> on exit, `collect.finish_job` saves
outputs and settles the state. An interruptible job that was preempted is run again in a new container on
its kept workspace volume (engine/interruptible.py). Stopping goes through one mechanism for
Ctrl+C and `dtrun stop` alike: a request in the store, then SIGTERM (stop) or SIGKILL (abort); the job's
thread sees the request when the container exits. Containers are removed only after their outputs
are exported, so a run whose client is killed can be finished by any later command (reconcile.py).
"""

from __future__ import annotations

import getpass
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from dtrun.backends.docker import LABEL, ContainerSpec, DockerBackend, VolumeMount
from dtrun.config import Settings
from dtrun.engine import cache, control
from dtrun.engine.artifacts import InputArtifact, mount_inputs, tar_path
from dtrun.engine.checkpoints import start_checkpoints
from dtrun.engine.collect import ARTIFACTS_LABEL, WORKSPACE_LABEL, Declared, declared_label, finish_job, finish_run
from dtrun.engine.gpus import create_with_gpus, gpu_admission
from dtrun.engine.inputs import job_inputs, resolve_dep
from dtrun.engine.interruptible import Attempts
from dtrun.engine.logs import LogSink
from dtrun.engine.scheduler import Admission, Scheduler, parallel_limit
from dtrun.images.manager import ensure_image
from dtrun.masking import Masker
from dtrun.names import new_run_name, sanitize
from dtrun.plan import WORKSPACE, Job, Plan, container_path
from dtrun.providers import devenv
from dtrun.snapshot import Snapshot
from dtrun.store import ArtifactRecord, JobRecord, RunRecord, State, Store

STOP_GRACE = 10
EXIT_INTERRUPTED = 130


@dataclass
class Hooks:
    """Where the engine reports to: the CLI prints, tests collect."""

    status: Callable[[str], None] = lambda message: None
    build_line: Callable[[str], None] = lambda line: None
    job_output: Callable[[bytes], None] = lambda chunk: None


@dataclass
class RunResult:
    run: RunRecord
    jobs: list[JobRecord] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return self.run.exit_code or 0


def store_label(store: Store) -> str:
    from dtrun.store.store import store_label as label_of

    return label_of(store.url)


@dataclass
class _RunState:
    run: RunRecord
    records: dict[str, JobRecord]
    no_cache: bool = False
    restore: dict[str, list[ArtifactRecord]] = field(default_factory=dict)
    earlier_logs: dict[str, bytes] = field(default_factory=dict)
    containers: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Engine:
    def __init__(self, settings: Settings, store: Store, backend: DockerBackend, snapshot: Snapshot,
                 hooks: Hooks | None = None, *, secrets: dict[str, str] | None = None,
                 admit: Admission | None = None) -> None:
        self.settings = settings
        self.store = store
        self.backend = backend
        self.snapshot = snapshot
        self.hooks = hooks or Hooks()
        self.secrets = secrets or {}
        self.masker_values = list(self.secrets.values())
        self.admit = admit
        self._code_lock = threading.Lock()

    def labels(self, **extra: str) -> dict[str, str]:
        return {LABEL: "1", f"{LABEL}.repo": self.store.repo, f"{LABEL}.store": store_label(self.store), **extra}

    # -- a whole run -----------------------------------------------------------------------------------
    def submit(self, plan: Plan, *, variables: dict[str, str] | None = None, args: list[str] | None = None,
               tag: str | None = None, name: str | None = None) -> RunRecord:
        """The run's record, written before anything runs (a detached run's parent writes it)."""
        run = RunRecord(name=name or new_run_name(self.store.run_names()), repo=self.store.repo,
                        workflow=plan.target, variables=variables or {}, args=args or [], tag=tag,
                        commit=self.snapshot.commit, branch=self.snapshot.branch, dirty=self.snapshot.dirty,
                        host=self.backend.host, user=_user())
        self.store.save_run(run)
        control.mark_active(self.store, run.name)
        return run

    def run(self, plan: Plan, *, variables: dict[str, str] | None = None, args: list[str] | None = None,
            tag: str | None = None, no_cache: bool = False, submitted: RunRecord | None = None,
            name: str | None = None) -> RunResult:
        for job in plan.jobs:
            self.backend.check_resources(job.workflow, job.resources)
        run = submitted or self.submit(plan, variables=variables, args=args, tag=tag, name=name)
        control.claim(self.store, run.name)
        records = {job.workflow: self._new_job(run, job) for job in plan.jobs}
        run.jobs = [r.id for r in records.values()]
        run.state = State.RUNNING
        self.store.save_run(run)
        self.hooks.status(f"run [bold]{run.name}[/bold]: {' -> '.join(records)}"
                          f"  (commit {(run.commit or 'none')[:8]}{', dirty' if run.dirty else ''})")
        state = _RunState(run, records, no_cache=no_cache)
        self._drive(plan.jobs, state)
        if run.tag and run.state == State.DONE:
            from dtrun.store.tags import tag_run

            self.hooks.status(f"tagged run {run.name} as [bold]{tag_run(self.store, run.tag, run.name).name}[/bold]")
        return RunResult(run, list(records.values()))

    def resume(self, plan: Plan, run: RunRecord, record: JobRecord) -> RunResult:
        """Run a stopped job again in its run, with its saved outputs put back where they were."""
        job = plan.job(record.workflow)
        self.backend.check_resources(job.workflow, job.resources)
        control.clear(self.store, record.id)
        control.mark_active(self.store, run.name)
        control.claim(self.store, run.name)
        run.state, run.finished_at, run.exit_code = State.RUNNING, None, None
        self.store.save_run(run)
        saved, record.artifacts, record.exit_code, record.message = record.artifacts, [], None, None
        record.finished_at = None
        record.move(State.SUBMITTED)
        self.store.save_job(record)
        records = {r.workflow: r for r in (self.store.load_job(j) for j in run.jobs)}
        records[job.workflow] = record
        state = _RunState(run, records, no_cache=True, restore={job.workflow: saved})
        logs = self.store.job_path(record.id, "logs.txt")
        if self.store.exists(logs):  # the resumed job's log continues the stopped one's
            state.earlier_logs[job.workflow] = self.store.read_bytes(logs)
        self._drive([job], state, done={name: records[name].state.succeeded for name in job.needs if name in records})
        return RunResult(run, [record])

    def _drive(self, jobs: list[Job], state: _RunState, done: dict[str, bool] | None = None) -> None:
        limit = parallel_limit(self.settings.max_parallel, self._host_cpus())
        scheduler = Scheduler(jobs, lambda job: self._job(job, state), lambda job, why: self._skip(job, state, why),
                              limit=limit, admit=self.admit or gpu_admission(self.backend, state.run.name),
                              done=done)
        interrupts = 0
        try:
            while True:
                try:
                    if scheduler.poll(0.2):
                        break
                except KeyboardInterrupt:
                    interrupts += 1
                    self._interrupt(state, control.ABORT if interrupts > 1 else control.STOP)
        finally:
            jobs_all = [self.store.load_job(job_id) for job_id in state.run.jobs]
            if all(j.state.finished for j in jobs_all):
                finish_run(self.store, state.run, jobs_all)
            else:
                self.store.save_run(state.run)
        if scheduler.errors:
            raise scheduler.errors[0]

    def _host_cpus(self) -> int | None:
        if self.settings.max_parallel:
            return None
        try:
            return int(self.backend.info.get("NCPU") or 0) or os.cpu_count()
        except Exception:  # the limit falls back to this machine's CPUs
            return os.cpu_count()

    def _interrupt(self, state: _RunState, action: str) -> None:
        """Ctrl+C: the same request `dtrun stop` makes, for every unfinished job of the run."""
        if action == control.STOP:
            self.hooks.status(f"stopping (SIGTERM, {STOP_GRACE}s grace; Ctrl+C again to abort)")
        else:
            self.hooks.status("aborting (outputs will not be saved)")
        with state.lock:
            for record in state.records.values():
                if not record.state.finished:
                    control.request(self.store, record.id, action)
                if record.id in state.containers:  # running: its thread has not begun collecting it
                    record.move(State.ABORTING if action == control.ABORT else State.STOPPING)
                    self.store.save_job(record)
            containers = list(state.containers.values())
        for container in containers:
            signal_container(self.backend, container, action)

    def _new_job(self, run: RunRecord, job: Job) -> JobRecord:
        record = JobRecord(id=uuid.uuid4().hex[:12], run=run.name, workflow=job.workflow, provider=job.provider,
                           host=self.backend.host, needs=job.needs, deps=[str(d) for d in job.inputs],
                           declared_artifacts=[a.path for a in job.artifacts])
        record.move(State.SUBMITTED)
        self.store.save_job(record)
        return record

    def _skip(self, job: Job, state: _RunState, why: str) -> None:
        record = state.records[job.workflow]
        upstream = [state.records[n].state for n in job.needs if n in state.records]
        halted = next((s for s in (State.ABORTED, State.STOPPED) if s in upstream), None)
        record.move(halted or State.FAILED, why)
        self.store.save_job(record)

    # -- one job ----------------------------------------------------------------------------------------
    def _job(self, job: Job, state: _RunState) -> bool:
        record = state.records[job.workflow]
        try:
            self._run_job(job, record, state)
        except BaseException as exc:
            if not record.state.finished:
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                record.move(State.FAILED, message)
                self.store.save_job(record)
            raise
        return record.state.succeeded

    def _halted(self, record: JobRecord) -> bool:
        """A stop or abort asked for before the job's container started: it does not start."""
        action = control.requested(self.store, record.id)
        if action is None:
            return False
        record.move(State.ABORTED if action == control.ABORT else State.STOPPED, "stopped before it started")
        self.store.save_job(record)
        return True

    def _run_job(self, job: Job, record: JobRecord, state: _RunState) -> None:
        run = state.run
        self.hooks.status(f"[bold cyan]>[/bold cyan] [bold]{job.workflow}[/bold] (job {record.id})")
        if self._halted(record):
            return
        inputs: list[InputArtifact] = []
        for name in job.needs:
            inputs.extend(job_inputs(self.store, self.store.repo, state.records[name]))
        for dep in job.inputs:
            inputs.extend(resolve_dep(self.store, dep))
        secrets = self._job_secrets(job)
        started = job.with_secrets(self.secrets)  # `${{ secrets.NAME }}` resolved for the container only

        record.move(State.BUILDING)
        self.store.save_job(record)
        image, built = ensure_image(self.backend.client, job.image, self.settings,
                                    docker_host=self.backend.cli_host, output=self.hooks.build_line,
                                    driver_version=self.backend.driver_version() if job.image.gpu else None)
        record.image = image
        if built:
            self.hooks.status(f"  built {image}")
        record.cache_key = cache.cache_key(code=self.snapshot.digest, job=job, variables=run.variables,
                                           image_id=self.backend.client.images.get(image).id, inputs=inputs,
                                           secrets={**secrets, **_referenced(job, self.secrets)})
        # issue 14: a dev environment is opened to be used, never replaced by an earlier run's outputs
        if not state.no_cache and devenv.APP_ENV not in job.env and self._reuse(job, record):
            return
        if self._halted(record):
            return

        declared = [Declared(a.path, container_path(job.working_dir, a.path)) for a in job.artifacts]
        labels = self.labels(**{f"{LABEL}.run": run.name, f"{LABEL}.job": record.id,
                                f"{LABEL}.workflow": job.workflow})
        workspace = self.backend.create_volume(f"dtrun-ws-{record.id}", labels)
        mounts = [VolumeMount(workspace, WORKSPACE)]
        mounts += mount_inputs(self.backend, self.store, inputs, image, self.labels())
        env = {**started.env, **secrets, "DTRUN_RUN": run.name, "DTRUN_JOB": record.id,
               "DTRUN_WORKFLOW": job.workflow}
        if devenv.APP_ENV in job.env:  # issue 14: a dev environment's per-job token: container env only,
            token = devenv.new_token()  # masked like a secret, kept for this user in a 0600 file
            env[devenv.TOKEN_ENV] = token
            self.masker_values.append(token)
            devenv.save_token(record.id, token)
        ca = self.settings.ca_bundle_path
        if ca:
            ca_mount, ca_env = self.backend.ca_bundle_mount(ca, image)
            mounts.append(ca_mount)
            env.update(ca_env)
        spec = ContainerSpec(
            name=f"dtrun-{sanitize(run.name)}-{sanitize(job.workflow)}-{record.id[:6]}-{uuid.uuid4().hex[:4]}",
            image=image, command=started.command, entrypoint=started.entrypoint, env=env,
            working_dir=job.working_dir,
            labels={**labels, ARTIFACTS_LABEL: declared_label(declared), WORKSPACE_LABEL: workspace},
            mounts=mounts, gpus=job.resources.gpu_count, memory=job.resources.memory,
            shm_size=job.resources.shm_size, cpus=job.resources.cpu, ports=job.ports)
        attempts = Attempts(self.backend, self.store, record, WORKSPACE)
        while True:  # more than once only for an interruptible job that was preempted (engine/interruptible.py)
            container = None
            try:
                host = self.backend.host_info() if job.resources.gpu_count else None
                container = create_with_gpus(self.backend, spec, job.resources.gpu, host,
                                             interruptible=job.resources.interruptible, notify=self.hooks.status)
                record.container = container.name
                skip = [m.target for m in mounts[1:]]
                with self._code_lock:  # the snapshot's packed tar is one file object, shared by the jobs
                    self.backend.put_archive(container, WORKSPACE, self._code(skip))
                if not attempts.count:
                    for saved in state.restore.get(job.workflow, []):
                        self._restore(container, record, saved)
                attempts.prepare(container)
            except BaseException:
                if container is not None:
                    self.backend.remove(container)
                self.backend.remove_volume(workspace)
                raise
            self._execute(job, record, container, declared, state)  # finish_job removes the container
            if not attempts.again():
                return
            # preempted: finish_job kept the workspace volume; the next attempt's log continues this one's
            state.earlier_logs[job.workflow] = attempts.earlier_log
            self.store.save_job(record)
            if self._halted(record):
                self.backend.remove_volume(workspace)
                return

    def _job_secrets(self, job: Job) -> dict[str, str]:
        if job.secrets is None:
            return dict(self.secrets)
        missing = [n for n in job.secrets if n not in self.secrets]
        if missing:
            from dtrun.errors import NotFound

            raise NotFound(f"workflow '{job.workflow}' needs the secret {missing[0]}, which is not set",
                           hint=f"dtrun secrets add {missing[0]}")
        return {n: self.secrets[n] for n in job.secrets}

    def _reuse(self, job: Job, record: JobRecord) -> bool:
        assert record.cache_key
        hit = cache.lookup(self.store, record.cache_key)
        if hit is None:
            return False
        record.artifacts = hit.artifacts
        record.exit_code = hit.exit_code
        record.cached_from = hit.output_id
        record.move(State.CACHED, f"reused job {record.cached_from} (unchanged code, spec, variables, image, "
                    "inputs)")
        self.store.save_job(record)
        self.hooks.status(f"[green]CACHED[/green] {job.workflow} (reusing job {record.cached_from}; "
                          "--no-cache runs it again); its output then:")
        self._replay_log(record.cached_from)
        return True

    def _replay_log(self, job_id: str) -> None:
        """A cache hit still shows what the job printed, as the run that produced it did."""
        from dtrun.engine.logs import stored_lines

        try:
            handle = self.store.open(self.store.job_path(job_id, "logs.txt"), "rb")
        except FileNotFoundError:
            return
        with handle:
            for _, text in stored_lines(handle):
                self.hooks.job_output(text)

    def _restore(self, container: Any, record: JobRecord, saved: ArtifactRecord) -> None:
        from dtrun.engine.restore import prefixed_tar

        source = tar_path(self.store, record.id, saved)
        with self.store.open(source, "rb") as data:
            self.backend.put_archive(container, "/", prefixed_tar(data, saved.container_path))
        self.hooks.status(f"  restored {saved.path} ({saved.files} files) from the stopped job")

    def _code(self, skip: list[str]) -> IO[bytes]:
        """The code snapshot, without files where read-only inputs will be mounted."""
        prefixes = [os.path.relpath(p, WORKSPACE) + "/" for p in skip if p.startswith(WORKSPACE + "/")]
        data, _ = self.snapshot.pack()
        if not any(f.startswith(tuple(prefixes)) or f + "/" in prefixes for f in self.snapshot.files):
            return data
        kept = [f for f in self.snapshot.files if not (f.startswith(tuple(prefixes)) or f + "/" in prefixes)]
        return Snapshot(self.snapshot.root, kept, None, None, False, self.snapshot.repo_id).pack()[0]

    def _execute(self, job: Job, record: JobRecord, container: Any, declared: list[Declared],
                 state: _RunState) -> None:
        with tempfile.NamedTemporaryFile(prefix="dtrun-log-", suffix=".txt") as log:
            log.write(state.earlier_logs.get(job.workflow, b""))
            sink = LogSink(log, self.hooks.job_output, Masker(self.masker_values))
            try:
                self.backend.start(container)
            except BaseException:
                self.backend.remove(container)
                self.backend.remove_volume(container.labels.get(WORKSPACE_LABEL, ""))
                raise
            published = self.backend.published_ports(container)
            for port in published:
                self.hooks.status(f"  {port.name} ({port.container_port} in the job) -> {port.url}")
            for line in devenv.announce(job.env, [(p.name, p.url) for p in published],  # issue 14: the app's URL
                                        devenv.load_token(record.id) or ""):
                self.hooks.status(line)
            record.move(State.RUNNING)
            self.store.save_job(record)
            with state.lock:
                state.containers[record.id] = container
            action = control.requested(self.store, record.id)
            if action:  # asked to stop while the container was being started
                signal_container(self.backend, container, action)
            checkpoints = start_checkpoints(self.backend, self.store, record.id,
                                            [(d.path, d.container_path, a.mount)
                                             for d, a in zip(declared, job.artifacts, strict=True)],
                                            container, self.hooks.status)
            try:
                for frame in self.backend.client.api.logs(container.id, stream=True, follow=True, stdout=True,
                                                          stderr=True, timestamps=True):
                    sink.frame(frame)
            finally:
                checkpoints.stop()
                sink.close()
            exit_info = self.backend.wait(container)
            with state.lock:
                state.containers.pop(record.id, None)
            self.store.upload(log.name, self.store.job_path(record.id, "logs.txt"))
        finish_job(self.store, self.backend, container, record, exit_info, declared, status=self.hooks.status,
                   memory=job.resources.memory, interruptible=job.resources.interruptible)
        self.hooks.status(_summary(job.workflow, record))


def signal_container(backend: DockerBackend, container: Any, action: str) -> None:
    """Stop: SIGTERM and a grace period (in the background, so a second Ctrl+C can abort). Abort: SIGKILL."""
    if action == control.ABORT:
        backend.kill(container)
    else:
        threading.Thread(target=backend.stop, args=(container, STOP_GRACE), daemon=True).start()


def _summary(workflow: str, record: JobRecord) -> str:
    colour = {"DONE": "green", "FAILED": "red"}.get(record.state.value, "yellow")
    detail = f" ({record.message})" if record.message and record.state != State.DONE else ""
    return f"[{colour}]{record.state.value}[/{colour}] {workflow}{detail}"


def _referenced(job: Job, secrets: dict[str, str]) -> dict[str, str]:
    """The secrets the job names as `${{ secrets.NAME }}`: their values are part of its cache key."""
    return {name: secrets[name] for name in job.secret_references() if name in secrets}


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER")


def write_output(chunk: bytes) -> None:
    sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


def wait_finished(store: Store, job_ids: list[str], timeout: float) -> list[JobRecord]:
    """Poll the store until the jobs are finished (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = [store.load_job(j) for j in job_ids]
        if all(j.state.finished for j in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.3)
