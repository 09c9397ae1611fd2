"""The engine: runs a plan's jobs in order on a backend, records every state, saves every output."""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from dtrun.backends.docker import CA_PATH, LABEL, ContainerSpec, DockerBackend, VolumeMount
from dtrun.backends.resources import size
from dtrun.config import Settings
from dtrun.engine.artifacts import InputArtifact, export_artifact, mount_inputs
from dtrun.engine.gpus import create_with_gpus, was_preempted
from dtrun.engine.inputs import job_inputs, resolve_dep
from dtrun.engine.interruptible import Attempts
from dtrun.images.manager import ensure_image
from dtrun.names import new_run_name, sanitize
from dtrun.plan import WORKSPACE, Job, Plan, container_path
from dtrun.snapshot import Snapshot
from dtrun.store import JobRecord, RunRecord, State, Store

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
    return hashlib.sha256(store.url.encode()).hexdigest()[:12]


class Engine:
    def __init__(self, settings: Settings, store: Store, backend: DockerBackend, snapshot: Snapshot,
                 hooks: Hooks | None = None) -> None:
        self.settings = settings
        self.store = store
        self.backend = backend
        self.snapshot = snapshot
        self.hooks = hooks or Hooks()

    def labels(self, **extra: str) -> dict[str, str]:
        return {LABEL: "1", f"{LABEL}.repo": self.store.repo, f"{LABEL}.store": store_label(self.store), **extra}

    # -- a whole run -----------------------------------------------------------------------------------
    def run(self, plan: Plan, *, variables: dict[str, str] | None = None, args: list[str] | None = None,
            tag: str | None = None) -> RunResult:
        for job in plan.jobs:
            self.backend.check_resources(job.workflow, job.resources)
        run = RunRecord(name=new_run_name(self.store.run_names()), repo=self.store.repo, workflow=plan.target,
                        variables=variables or {}, args=args or [], tag=tag, commit=self.snapshot.commit,
                        branch=self.snapshot.branch, dirty=self.snapshot.dirty, host=self.backend.host,
                        user=_user())
        result = RunResult(run)
        records = {job.workflow: self._new_job(run, job) for job in plan.jobs}
        run.jobs = [r.id for r in records.values()]
        self.store.save_run(run)
        self.hooks.status(f"run [bold]{run.name}[/bold]: {' -> '.join(records)}"
                          f"  (commit {(run.commit or 'none')[:8]}{', dirty' if run.dirty else ''})")
        run.state = State.RUNNING
        failed: JobRecord | None = None
        try:
            for job in plan.jobs:
                record = records[job.workflow]
                result.jobs.append(record)
                if failed is not None:
                    record.move(State.FAILED, f"not run: {failed.workflow} did not succeed")
                    self.store.save_job(record)
                    continue
                upstream = [records[name] for name in job.needs]
                self.run_job(run, job, record, upstream)
                if not record.state.succeeded:
                    failed = record
        finally:
            final = failed or (result.jobs[-1] if result.jobs else None)
            run.state = final.state if final else State.DONE
            if failed is None and run.state.succeeded:
                run.state = State.DONE
            run.exit_code = (failed.exit_code if failed and failed.exit_code is not None
                             else (EXIT_INTERRUPTED if failed and failed.state in (State.STOPPED, State.ABORTED)
                                   else (1 if failed else 0)))
            import time

            run.finished_at = time.time()
            self.store.save_run(run)
        return result

    def _new_job(self, run: RunRecord, job: Job) -> JobRecord:
        record = JobRecord(id=uuid.uuid4().hex[:12], run=run.name, workflow=job.workflow, provider=job.provider,
                           host=self.backend.host, needs=job.needs, deps=[str(d) for d in job.inputs],
                           declared_artifacts=[a.path for a in job.artifacts])
        record.move(State.SUBMITTED)
        self.store.save_job(record)
        return record

    # -- one job ----------------------------------------------------------------------------------------
    def run_job(self, run: RunRecord, job: Job, record: JobRecord, upstream: list[JobRecord]) -> None:
        self.hooks.status(f"[bold cyan]>[/bold cyan] [bold]{job.workflow}[/bold] (job {record.id})")
        inputs: list[InputArtifact] = []
        for up in upstream:
            inputs.extend(job_inputs(self.store, self.store.repo, up))
        for dep in job.inputs:
            inputs.extend(resolve_dep(self.store, dep))

        record.move(State.BUILDING)
        self.store.save_job(record)
        image, built = ensure_image(self.backend.client, job.image, self.settings,
                                    docker_host=self.backend.cli_host, output=self.hooks.build_line)
        record.image = image
        if built:
            self.hooks.status(f"  built {image}")

        labels = self.labels(**{f"{LABEL}.run": run.name, f"{LABEL}.job": record.id,
                                f"{LABEL}.workflow": job.workflow})
        workspace = self.backend.create_volume(f"dtrun-ws-{record.id}", labels)
        mounts = [VolumeMount(workspace, WORKSPACE)]
        mounts += mount_inputs(self.backend, self.store, inputs, image, self.labels())
        env = {**job.env, "DTRUN_RUN": run.name, "DTRUN_JOB": record.id, "DTRUN_WORKFLOW": job.workflow}
        ca = self.settings.ca_bundle_path
        if ca:
            env.update({k: CA_PATH for k in ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                                               "NODE_EXTRA_CA_CERTS")})
        spec = ContainerSpec(
            name=f"dtrun-{sanitize(run.name)}-{sanitize(job.workflow)}-{record.id[:6]}", image=image,
            command=job.command, entrypoint=job.entrypoint, env=env, working_dir=job.working_dir, labels=labels,
            mounts=mounts, gpus=job.resources.gpu_count, memory=job.resources.memory,
            shm_size=job.resources.shm_size, cpus=job.resources.cpu, ports=job.ports)
        attempts = Attempts(self.backend, self.store, record, WORKSPACE)
        try:
            while True:  # more than once only for an interruptible job that was preempted
                container = create_with_gpus(self.backend, spec, job.resources.gpu, self.backend.host_info()
                                             if job.resources.gpu_count else None,
                                             interruptible=job.resources.interruptible, notify=self.hooks.status)
                record.container = container.name
                try:
                    skip = [m.target for m in mounts[1:]]
                    self.backend.put_archive(container, WORKSPACE, self._code(skip))
                    if ca:
                        self.backend.put_file(container, CA_PATH, ca.read_bytes())
                    attempts.prepare(container)
                    self._execute(job, record, container)
                finally:
                    self.backend.remove(container)
                    self.store.save_job(record)
                if not attempts.again():
                    break
        finally:
            self.backend.remove_volume(workspace)
            self.store.save_job(record)

    def _code(self, skip: list[str]) -> IO[bytes]:
        """The code snapshot, without files where read-only inputs will be mounted."""
        prefixes = [os.path.relpath(p, WORKSPACE) + "/" for p in skip if p.startswith(WORKSPACE + "/")]
        data, _ = self.snapshot.pack()
        if not any(f.startswith(tuple(prefixes)) or f + "/" in prefixes for f in self.snapshot.files):
            return data
        from dtrun.snapshot import Snapshot

        kept = [f for f in self.snapshot.files if not (f.startswith(tuple(prefixes)) or f + "/" in prefixes)]
        return Snapshot(self.snapshot.root, kept, None, None, False, self.snapshot.repo_id).pack()[0]

    def _execute(self, job: Job, record: JobRecord, container: Any) -> None:
        with tempfile.NamedTemporaryFile(prefix="dtrun-log-", suffix=".txt") as log:
            interrupted: State | None = None
            self.backend.start(container)
            for port in self.backend.published_ports(container):
                self.hooks.status(f"  {port.name} ({port.container_port} in the job) -> {port.url}")
            record.move(State.RUNNING)
            self.store.save_job(record)
            try:
                self._stream(container, log)
            except KeyboardInterrupt:
                interrupted = self._interrupt(record, container, log)
            exit_info = self.backend.wait(container)
            record.exit_code = exit_info.code
            log.flush()
            self.store.upload(log.name, self.store.job_path(record.id, "logs.txt"))
            if interrupted == State.ABORTING:
                record.move(State.ABORTED, "aborted: outputs were not saved")
                return
            record.move(State.UPLOADING)
            self.store.save_job(record)
            self._save_outputs(job, record, container)
            preempted = was_preempted(self.backend, container.name) if job.resources.interruptible else None
            if interrupted == State.STOPPING:
                record.move(State.STOPPED, "stopped by the user; outputs saved")
            elif preempted:  # before exit 0: a job that handles SIGTERM and exits cleanly must resume too
                record.move(State.SUBMITTED, f"interruptible: preempted by {preempted}, outputs saved; "
                            "resumes when its GPUs are free")
            elif exit_info.code == 0:
                record.move(State.DONE)
            else:
                message = (f"out of memory: the job exceeded its memory limit "
                           f"({size(job.resources.memory) if job.resources.memory else 'the host memory'}) "
                           f"and was killed (exit {exit_info.code})"
                           if exit_info.oom_killed else f"exited with code {exit_info.code}")
                record.move(State.FAILED, message)
            self.hooks.status(_summary(job.workflow, record))

    def _stream(self, container: Any, log: IO[bytes]) -> None:
        for chunk in self.backend.logs(container):
            log.write(chunk)
            self.hooks.job_output(chunk)

    def _interrupt(self, record: JobRecord, container: Any, log: IO[bytes]) -> State:
        """First Ctrl+C: stop gracefully (outputs saved). A second one while stopping: abort."""
        record.move(State.STOPPING)
        self.store.save_job(record)
        self.hooks.status(f"stopping {record.workflow} (SIGTERM, {STOP_GRACE}s grace; Ctrl+C again to abort)")
        try:
            self.backend.stop(container, STOP_GRACE)
            with contextlib.suppress(Exception):
                self._stream_rest(container, log)
            return State.STOPPING
        except KeyboardInterrupt:
            record.move(State.ABORTING)
            self.store.save_job(record)
            self.backend.kill(container)
            return State.ABORTING

    def _stream_rest(self, container: Any, log: IO[bytes]) -> None:
        """After a stop, the full log replaces the partial one; only the unseen tail is shown."""
        seen = log.tell()
        full = b"".join(self.backend.logs(container, follow=False))
        log.seek(0)
        log.truncate()
        log.write(full)
        if len(full) > seen:
            self.hooks.job_output(full[seen:])

    def _save_outputs(self, job: Job, record: JobRecord, container: Any) -> None:
        saved = []
        for artifact in job.artifacts:
            cpath = container_path(job.working_dir, artifact.path)
            item = export_artifact(self.backend, container, self.store, record.id, artifact.path, cpath)
            if item is None:
                self.hooks.status(f"  [yellow]artifact {artifact.path} was not created by the job[/yellow]")
                continue
            saved.append(item)
            self.hooks.status(f"  saved artifact {artifact.path}: {item.files} files, {_size(item.size)}")
        record.artifacts = saved


def _summary(workflow: str, record: JobRecord) -> str:
    colour = {"DONE": "green", "FAILED": "red"}.get(record.state.value, "yellow")
    detail = f" ({record.message})" if record.message and record.state != State.DONE else ""
    return f"[{colour}]{record.state.value}[/{colour}] {workflow}{detail}"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER")


def write_output(chunk: bytes) -> None:
    sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()
