"""One job in one container (a workflow job): inputs, image, cache, code, start, logs, outputs.

The engine (`runner.py`) schedules jobs and records the run; this runs one job end to end. An
interruptible job that was preempted is run again in a new container on its kept workspace volume
(engine/interruptible.py). Containers are removed only after their outputs are exported, so a run whose
client is killed can be finished by any later command (reconcile.py).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from typing import IO, TYPE_CHECKING, Any, cast

from dtrun.backends.base import LABEL, Backend, ContainerSpec, ImageInfo, VolumeMount
from dtrun.engine import cache, control
from dtrun.engine.events import JOB, OUTPUT, RESULT, STATUS, Event
from dtrun.engine.images import RecordedImages, recorded_images
from dtrun.engine.inputs import job_inputs, resolve_dep
from dtrun.plan import WORKSPACE, Job
from dtrun.providers import devenv
from dtrun.store import ArtifactRecord, JobRecord, State

if TYPE_CHECKING:
    from dtrun.engine.artifacts import InputArtifact
    from dtrun.engine.collect import Declared
    from dtrun.engine.runner import Engine, _RunState


class ContainerJob:
    """The one-container path of `Engine`; holds nothing but the engine it works for."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store
        self.backend = engine.backend
        self.settings = engine.settings
        self.snapshot = engine.snapshot
        self.secrets = engine.secrets
        self.masker_values = engine.masker_values

    def emit(self, event: Event) -> None:
        self.engine.emit(event)

    def labels(self, **extra: str) -> dict[str, str]:
        return self.engine.labels(**extra)

    def _halted(self, record: JobRecord) -> bool:
        """A stop or abort asked for before the job's container started: it does not start."""
        action = control.requested(self.store, record.id)
        if action is None:
            return False
        record.move(State.ABORTED if action == control.ABORT else State.STOPPED, "stopped before it started")
        self.store.save_job(record)
        return True

    def run(self, job: Job, record: JobRecord, state: _RunState) -> None:
        run = state.run
        self.emit(Event(JOB, f"> {job.workflow} (job {record.id})", job=job.workflow))
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
        self.engine.code.start()  # hashing the snapshot overlaps the image lookup (engine/code.py)
        cacheable = not state.no_cache and not _is_app(job)  # a dev environment is opened to be used
        key_secrets = {**secrets, **_referenced(job, self.secrets)}
        tried = None
        images = recorded_images(self.backend)
        known = images.recorded_image(job.image, self.settings) if images is not None and cacheable else None
        if known is not None:  # the image as this client last saw it: a hit needs no daemon (images/record.py)
            record.image = known[0]
            tried = record.cache_key = self._key(job, run.variables, known[1], inputs, key_secrets)
            if self._reuse(job, record):
                return
        with self.engine.slot():  # from here on the job needs the host: at most `max_parallel` jobs at once
            from dtrun.engine.pulls import pull_private_image

            if self._halted(record):  # a stop asked for while it waited for its slot
                return
            self.engine.check_host()
            pull_private_image(self.backend, job, self.secrets, self._status)  # registry_auth (engine/pulls.py)
            image, info = self._image(job, images)
            record.image = image
            record.cache_key = self._key(job, run.variables, info, inputs, key_secrets)
            if cacheable and record.cache_key != tried and self._reuse(job, record):
                return
            if self._halted(record):
                return
            self._launch(job, record, state, image, inputs, env={**started.env, **secrets}, started=started,
                         info=info)

    def _image(self, job: Job, images: RecordedImages | None) -> tuple[str, ImageInfo]:
        """The job's image, built if missing, and what it is (its id, user, HOME), from the daemon."""
        from dtrun.engine.build_watch import BuildWatch

        watch = BuildWatch(self.emit, job.workflow)  # the build's steps and summary (issue 18)
        try:
            if images is not None:
                image, info, built = images.resolve_image(job.image, self.settings, output=watch.line,
                                                          step=watch.step, say=watch.start)
            else:
                image, built = self.backend.ensure_image(job.image, self.settings, output=watch.line,
                                                         step=watch.step, say=watch.start)
                info = _image_info(self.backend, image)
        except BaseException as exc:
            watch.failed(str(exc), interrupted=not isinstance(exc, Exception))
            raise
        if built:
            watch.done(image)
        return image, info

    def _key(self, job: Job, variables: dict[str, str], info: ImageInfo, inputs: list[InputArtifact],
             secrets: dict[str, str]) -> str:
        return cache.cache_key(code=self.engine.code.digest(), job=job, variables=variables, image_id=info.id,
                               inputs=inputs, secrets=secrets)

    def _launch(self, job: Job, record: JobRecord, state: _RunState, image: str, inputs: list[InputArtifact], *,
                env: dict[str, str], started: Job, info: ImageInfo) -> None:
        """Stage the inputs, start the job, follow it to its end: the part that differs per kind of
        backend (`engine/agent_job.py` is the path of backends whose jobs run dtrun's agent)."""
        from dtrun.engine import exposure
        from dtrun.engine.artifacts import copy_file_inputs, mount_inputs
        from dtrun.engine.collect import ARTIFACTS_LABEL, WORKSPACE_LABEL, declare, declared_label
        from dtrun.engine.interruptible import Attempts
        from dtrun.engine.kept import cache_mounts, folders_tar
        from dtrun.engine.progress import MeteredReader, Progress, size_of
        from dtrun.names import sanitize

        run = state.run
        declared = declare(job)
        labels = self.labels(**{f"{LABEL}.run": run.name, f"{LABEL}.job": record.id,
                                f"{LABEL}.workflow": job.workflow})
        self.engine.code.send(run.name)  # the run's tree goes to the code volume while the inputs are mounted
        mounts = mount_inputs(self.backend, self.store, inputs, image, self.labels(),
                              progress=lambda name: Progress(self.emit, f"{job.workflow}: {name}", job=job.workflow))
        mounts += cache_mounts(self.backend, workflow=job.workflow, paths=job.cache, working_dir=job.working_dir,
                               info=info, labels=self.labels(), taken=[VolumeMount("", WORKSPACE), *mounts])
        try:  # a fresh copy-on-write view of the run's tree, else an empty volume the snapshot is copied into
            # a job over several nodes copies its code into each node's workspace (only node 0 mounts this one)
            view = None if job.torchrun else self.engine.code.view(f"dtrun-ws-{record.id}", labels, image)
        except BaseException:
            self.backend.remove_volume(f"dtrun-ws-{record.id}")
            raise
        workspace = view or self.backend.create_volume(f"dtrun-ws-{record.id}", labels)
        mounts.insert(0, VolumeMount(workspace, WORKSPACE))
        env = {**env, "DTRUN_RUN": run.name, "DTRUN_JOB": record.id, "DTRUN_WORKFLOW": job.workflow}
        env.update(exposure.start_token(job, record.id, self.masker_values))  # a dev environment's token
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
            shm_size=job.resources.shm_size, cpus=job.resources.cpu, ports=job.ports,
            publish_all=self.settings.publishes_all, torchrun=job.torchrun)
        attempts = Attempts(self.backend, self.store, record, WORKSPACE)
        while True:  # more than once only for an interruptible job that was preempted (engine/interruptible.py)
            container = None
            try:
                container = self.backend.submit(spec, job.resources.gpu, interruptible=job.resources.interruptible,
                                                notify=self._status)
                record.container = container.name
                if view is None:
                    skip = [m.target for m in mounts[1:]]
                    with self.engine.code_lock:  # the snapshot's packed tar is one file object, shared by jobs
                        code = self._code(skip)
                        upload = Progress(self.emit, f"{job.workflow}: code", job=job.workflow, total=size_of(code))
                        try:
                            self.backend.put_archive(container, WORKSPACE,
                                                     cast("IO[bytes]", MeteredReader(code, upload)))
                        finally:
                            upload.close()
                copy_file_inputs(self.backend, self.store, container, inputs)
                if job.folders:  # artifact folders of a command no prelude wraps (engine/kept.py)
                    self.backend.put_archive(container, "/", folders_tar(job.folders, info))
                if not attempts.count:
                    for saved in state.restore.get(job.workflow, []):
                        self._restore(container, record, saved)
                attempts.prepare(container)
            except BaseException:
                if container is not None:
                    self.backend.remove(container)
                self.backend.remove_volume(workspace)
                devenv.forget(record.id)  # a dev environment's token: no use now
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
        self.emit(Event(RESULT, f"CACHED {job.workflow} (reusing job {record.cached_from}; "
                        "--no-cache runs it again); its output then:", job=job.workflow, state=State.CACHED.value))
        from dtrun.engine.program_cache import replay_log

        replay_log(self.store, self.emit, job.workflow, record.cached_from, step=None)
        return True

    def _restore(self, container: Any, record: JobRecord, saved: ArtifactRecord) -> None:
        from dtrun.engine.artifacts import tar_path
        from dtrun.store.archive import under

        source = tar_path(self.store, record.id, saved)
        with self.store.open(source, "rb") as data, under(saved.restore_at, data) as tar:
            self.backend.put_archive(container, "/", tar)
        self._status(f"  restored {saved.path} ({saved.files} files) from the stopped job")

    def _code(self, skip: list[str]) -> IO[bytes]:
        """The code snapshot, without files where read-only inputs will be mounted."""
        from dtrun.snapshot import Snapshot

        prefixes = [os.path.relpath(p, WORKSPACE) + "/" for p in skip if p.startswith(WORKSPACE + "/")]
        data, _ = self.snapshot.pack()
        if not any(f.startswith(tuple(prefixes)) or f + "/" in prefixes for f in self.snapshot.files):
            return data
        kept = [f for f in self.snapshot.files if not (f.startswith(tuple(prefixes)) or f + "/" in prefixes)]
        return Snapshot(self.snapshot.root, kept, None, None, False, self.snapshot.repo_id).pack()[0]

    def _execute(self, job: Job, record: JobRecord, container: Any, declared: list[Declared],
                 state: _RunState) -> None:
        from dtrun.engine import exposure
        from dtrun.engine.checkpoints import start_checkpoints
        from dtrun.engine.collect import WORKSPACE_LABEL, finish_job
        from dtrun.engine.logs import LogSink, stream_until_exit
        from dtrun.engine.progress import Progress
        from dtrun.masking import Masker

        with tempfile.NamedTemporaryFile(prefix="dtrun-log-", suffix=".txt") as log:
            log.write(state.earlier_logs.get(job.workflow, b""))
            sink = LogSink(log, lambda chunk: self.emit(Event(OUTPUT, job=job.workflow, data=chunk)),
                           Masker(self.masker_values))
            try:
                self.backend.start(container)
            except BaseException:
                self.backend.remove(container)
                self.backend.remove_volume(container.labels.get(WORKSPACE_LABEL, ""))
                devenv.forget(record.id)
                raise
            try:  # ports and app as this client reaches them, until the container ends (engine/exposure.py)
                exposed = exposure.Exposure(self.backend, container, job, record.id, self._status)
            except BaseException:
                self.backend.remove(container)
                self.backend.remove_volume(container.labels.get(WORKSPACE_LABEL, ""))
                devenv.forget(record.id)
                raise
            record.ports = dict(exposed.urls)  # for `dtrun status --json` (scheme included)
            record.move(State.RUNNING)
            self.store.save_job(record)
            with state.lock:
                state.containers[record.id] = container
            action = control.requested(self.store, record.id)
            if action:  # asked to stop while the container was being started
                self.engine.signal(container, action)
            try:
                checkpoints = start_checkpoints(self.backend, self.store, record.id, declared, container,
                                                self._status)
            except BaseException:
                exposed.close()
                raise
            try:
                exit_info = stream_until_exit(self.backend, container, sink)
            finally:
                exposed.close()
                checkpoints.stop()
                sink.close()
            with state.lock:
                state.containers.pop(record.id, None)
            self.store.upload(log.name, self.store.job_path(record.id, "logs.txt"))
        finish_job(self.store, self.backend, container, record, exit_info, declared, status=self._status,
                   progress=lambda name: Progress(self.emit, f"{job.workflow}: {name}", job=job.workflow),
                   memory=job.resources.memory, interruptible=job.resources.interruptible,
                   clean_ups=None if job.resources.interruptible else state.clean_ups)
        detail = f" ({record.message})" if record.message and record.state != State.DONE else ""
        self.emit(Event(RESULT, f"{record.state.value} {job.workflow}{detail}", job=job.workflow,
                        state=record.state.value))

    def _status(self, message: str) -> None:
        self.emit(Event(STATUS, message))


def _image_info(backend: Backend, image: str) -> ImageInfo:
    from dtrun.errors import NotFound

    found = backend.image(image)
    if found is None:
        raise NotFound(f"the image {image} is gone from {backend.host}", hint="run again: it will be built")
    return found


def _is_app(job: Job) -> bool:
    """A dev environment (`engine/exposure.py`'s `is_app`, without importing what serves its ports)."""
    return devenv.APP_ENV in job.env


def _referenced(job: Job, secrets: dict[str, str]) -> dict[str, str]:
    """The secrets the job names as `${{ secrets.NAME }}`: their values are part of its cache key."""
    return {name: secrets[name] for name in job.secret_references() if name in secrets}
