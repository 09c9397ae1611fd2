"""One workflow job on a backend whose jobs run dtrun's in-job agent (`AgentBackend`: Slurm, Kubernetes).

Everything before the launch is the container path's (`container_job.py`: secrets, image, cache key,
cache reuse); what differs is how the job gets its inputs and gives back its results. The client
cannot reach the container, so all of it goes through the store: the code snapshot is uploaded once
per digest (`repos/<repo>/code/<digest>.tar`), the dep artifacts are named by their stored tars, and
the agent's manifest (`dtrun.agent.manifest`) says what to unpack where, what to run and what to save.
The backend launches it; the engine follows the queue (a pending job shows the scheduler's reason in
its record), then the stored log, then collects the exit and the outputs the agent saved
(`Exit.saved`) through the same `finish_job` as every other job.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from typing import TYPE_CHECKING, Any

from dtrun.agent.manifest import JobManifest, OutputArtifact, Transfer
from dtrun.backends.base import LABEL, AgentBackend, AgentJobSpec, ImageInfo
from dtrun.engine import control
from dtrun.engine.artifacts import InputArtifact, tar_path
from dtrun.engine.collect import ARTIFACTS_LABEL, Declared, declare, declared_label, finish_job
from dtrun.engine.container_job import ContainerJob
from dtrun.engine.events import OUTPUT, RESULT, Event
from dtrun.engine.logs import LogSink
from dtrun.errors import DtrunError
from dtrun.masking import Masker
from dtrun.names import sanitize
from dtrun.plan import WORKSPACE, Job
from dtrun.store import JobRecord, State

if TYPE_CHECKING:
    from dtrun.engine.runner import _RunState


class AgentJob(ContainerJob):
    """The agent path of `Engine`: the container path's preparation, then launch, follow, collect."""

    def _launch(self, job: Job, record: JobRecord, state: _RunState, image: str, inputs: list[InputArtifact], *,
                env: dict[str, str], started: Job, info: ImageInfo) -> None:
        backend = self.backend
        assert isinstance(backend, AgentBackend)
        run = state.run
        # `${{ secrets.NAME }}` in the command is a reference to $DTRUN_SECRET_NAME (Job.with_secrets), never
        # the value: the values travel through the backend's secret channel only, never in the job's script
        argv = [*(started.entrypoint or []), *(started.command or [])]
        if not argv:
            raise DtrunError(f"workflow '{job.workflow}' has no command to run",
                             hint=f"on {backend.host} a job's command runs through dtrun's agent: add `commands:`")
        if job.ports:
            raise DtrunError(f"workflow '{job.workflow}' asks for ports, which {backend.host} cannot publish to this "
                             "machine", hint="run it with `dtrun --backend docker`, or drop `ports:`")
        from dtrun.secret_env import PREFIX

        secrets = {**self._job_secrets(job),
                   **{n: self.secrets[n] for n in job.secret_references() if n in self.secrets},
                   **{k: v for k, v in started.env.items() if k.startswith(PREFIX)}}
        declared = declare(job)
        targets = [i.record.container_path for i in inputs]
        if len(set(targets)) < len(targets):
            raise DtrunError("two dependencies provide the same path",
                             hint="a job can receive only one artifact per path; drop one of the deps")
        manifest = JobManifest(
            store=self._store_url(), repo=self.store.repo, run=run.name, job=record.id, workflow=job.workflow,
            command=argv, workspace=WORKSPACE, working_dir=job.working_dir, code=self._code_in_store(),
            inputs=[Transfer(self._relative(tar_path(self.store, i.job_id, i.record, repo=i.repo)),
                             i.record.container_path) for i in inputs],
            restore=[Transfer(self._relative(tar_path(self.store, record.id, saved)), saved.container_path)
                     for saved in state.restore.get(job.workflow, [])],
            env={**{k: v for k, v in job.env.items() if k not in secrets}, "DTRUN_RUN": run.name,
                 "DTRUN_JOB": record.id, "DTRUN_WORKFLOW": job.workflow},
            secrets=sorted(secrets),
            artifacts=[OutputArtifact(d.path, d.container_path, d.mount, d.node, d.source) for d in declared])
        labels = self.labels(**{f"{LABEL}.run": run.name, f"{LABEL}.job": record.id, f"{LABEL}.workflow": job.workflow,
                                ARTIFACTS_LABEL: declared_label(declared)})
        gpu = job.resources.gpu
        spec = AgentJobSpec(
            name=f"dtrun-{sanitize(run.name)}-{sanitize(job.workflow)}-{record.id[:6]}-{uuid.uuid4().hex[:4]}",
            run=run.name, job_id=record.id, workflow=job.workflow, image=image, labels=labels,
            manifest=manifest.to_json(), secrets=secrets, working_dir=job.working_dir,
            gpus=job.resources.gpu_count, gpu_name=gpu.name if gpu else None,
            memory=job.resources.memory, shm_size=job.resources.shm_size, cpus=job.resources.cpu,
            interruptible=job.resources.interruptible, torchrun=job.torchrun)
        handle = backend.launch(spec, notify=self._status)
        record.container = handle.name
        self.store.save_job(record)
        with state.lock:
            state.containers[record.id] = handle
        try:
            self._follow(job, record, handle, declared, state)
        finally:
            with state.lock:
                state.containers.pop(record.id, None)

    def _follow(self, job: Job, record: JobRecord, handle: Any, declared: list[Declared], state: _RunState) -> None:
        backend = self.backend
        assert isinstance(backend, AgentBackend)
        asked = control.requested(self.store, record.id)
        if asked:  # asked to stop while the job was being submitted
            self.engine.signal(handle, asked)
        shown: str | None = None
        while backend.queued(handle):  # say why it waits, once per reason
            reason = backend.pending_reason(handle)
            if reason and reason != shown:  # `dtrun status` shows it: SUBMITTED (queued: Resources: ...)
                shown = reason
                if record.state != State.SUBMITTED:
                    record.move(State.SUBMITTED)
                record.message = f"queued: {reason}"
                self.store.save_job(record)
                self._status(f"  {job.workflow}: {record.message}")
            if not asked and (asked := control.requested(self.store, record.id)):
                self.engine.signal(handle, asked)
            import time

            time.sleep(1.0)
        record.message = None
        record.move(State.RUNNING)
        self.store.save_job(record)
        with tempfile.NamedTemporaryFile(prefix="dtrun-log-", suffix=".txt") as log:
            log.write(state.earlier_logs.get(job.workflow, b""))
            sink = LogSink(log, lambda chunk: self.emit(Event(OUTPUT, job=job.workflow, data=chunk)),
                           Masker(self.masker_values))
            try:
                for frame in self.backend.logs(handle, follow=True, timestamps=True):
                    sink.frame(frame)
            finally:
                sink.close()
            exit_info = self.backend.wait(handle)
            self.store.upload(log.name, self.store.job_path(record.id, "logs.txt"))
        finish_job(self.store, self.backend, handle, record, exit_info, declared, status=self._status,
                   memory=job.resources.memory, interruptible=job.resources.interruptible)
        for saved in record.artifacts:
            self._status(f"  saved artifact {saved.path}: {saved.files} files")
        detail = f" ({record.message})" if record.message and record.state != State.DONE else ""
        self.emit(Event(RESULT, f"{record.state.value} {job.workflow}{detail}", job=job.workflow,
                        state=record.state.value))

    def _store_url(self) -> str:
        url = self.store.url
        return url if "://" in url else os.path.abspath(url)

    def _relative(self, path: str) -> str:
        return path[len(self.store.root):].lstrip("/")

    def _code_in_store(self) -> str | None:
        """The snapshot as one tar in the store, uploaded once per digest (every job of a run shares it)."""
        if not self.snapshot.files:
            return None
        digest = self.snapshot.digest
        path = self.store.repo_path("code", f"{digest}.tar")
        with self.engine.code_lock:
            if not self.store.exists(path):
                data, _ = self.snapshot.pack()
                data.seek(0)
                with tempfile.NamedTemporaryFile(prefix="dtrun-code-", suffix=".tar") as tmp:
                    while chunk := data.read(1 << 20):
                        tmp.write(chunk)
                    tmp.flush()
                    self.store.upload(tmp.name, path)
                data.seek(0)
        return self._relative(path)
