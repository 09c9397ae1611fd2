"""`SlurmBackend`: dtrun's jobs as `sbatch` jobs running the in-job agent (an `AgentJobBackend`).

Only what is Slurm's own lives here: turning an `AgentJobSpec` into an sbatch script (`script.py`),
submitting it once (a job already in the queue under the job's deterministic name is reused, so a
client killed between `sbatch` and recording the id never submits twice), reading the queue back as
`QueueJob`s (`queue.py`: squeue, then sacct), signalling and cancelling. Logs, exits, outputs,
claims and stops come from the shared `dtrun.backends.agent` layer.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from dtrun.backends.agent import AgentHandle, AgentJobBackend, QueueJob
from dtrun.backends.base import CREATED, EXITED, LABEL, RUNNING, AgentJobSpec, Output
from dtrun.backends.slurm.commands import SlurmCommands
from dtrun.backends.slurm.queue import ACTIVE, PENDING, SlurmJob, SlurmQueue
from dtrun.backends.slurm.script import SbatchJob, job_name, node_image, render
from dtrun.backends.slurm.settings import STORE_ENV, SlurmSettings

if TYPE_CHECKING:
    from dtrun.backends.slurm.hosts import Partition
    from dtrun.config import Settings

#: Seconds a squeue listing is reused by the threads that poll it (parallel jobs, logs, waits).
LISTING_TTL = 1.0


class SlurmBackend(AgentJobBackend):
    #: A multi-node torchrun is one job over `--nodes=N`, one srun task per node (`nodes.py`).
    multi_node = True

    def __init__(self, settings: Settings, slurm: SlurmSettings, commands: SlurmCommands | None = None) -> None:
        super().__init__(settings)
        self.slurm = slurm
        self.commands = commands or SlurmCommands(slurm.login, ssh_config=slurm.ssh_config)
        self.queue = SlurmQueue(self.commands)
        self.host = f"slurm ({slurm.login}" + (f", partition {slurm.partition})" if slurm.partition else ")")
        self._listing: tuple[float, list[SlurmJob]] | None = None

    # -- submit --------------------------------------------------------------------------------------
    def job_name(self, spec: AgentJobSpec) -> str:
        return job_name(spec.run, spec.job_id)

    def submit_job(self, spec: AgentJobSpec, notify: Output) -> str:
        live = [j for j in self.queue.find(spec.run, spec.job_id) if not j.finished]
        if live:  # submitted by an earlier attempt of this client: the same job, not a second one
            return live[0].id
        local_store = "://" not in self.settings.store
        job = SbatchJob(
            run=spec.run, job_id=spec.job_id, workflow=spec.workflow, image=spec.image, manifest=spec.manifest,
            working_dir=spec.working_dir, gpus=spec.gpus, gpu_name=spec.gpu_name, memory=spec.memory,
            cpus=spec.cpus, shm_size=spec.shm_size, interruptible=spec.interruptible,
            timeout=spec.timeout or self.slurm.time_limit,
            secrets=tuple(sorted(spec.secrets)), store_label=spec.labels.get(f"{LABEL}.store", ""),
            store_mount=os.path.abspath(self.settings.store) if local_store else None,
            repo=spec.labels.get(f"{LABEL}.repo", ""), torchrun=spec.torchrun)
        env = {name: os.environ[name] for name in STORE_ENV if os.environ.get(name)}
        job_id = self.queue.submit(render(job, self.slurm), env={**env, **spec.secrets})
        self._listing = None
        notify(f"  submitted {spec.workflow} as Slurm job {job_id} ({node_image(spec.image, self.slurm)})")
        return job_id

    def publish_image(self, image: str, output: Output) -> str:
        """With `slurm.registry`, the nodes pull the image from there: tag and push it (as the script
        names it, `node_image`); without one, the nodes use the local image as it is."""
        if not self.slurm.registry:
            return image
        import subprocess

        target = node_image(image, self.slurm)
        for args in (["docker", "tag", image, target], ["docker", "push", target]):
            proc = subprocess.run(args, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                from dtrun.backends.slurm.commands import SlurmError

                raise SlurmError(f"cannot push {image} to slurm.registry {self.slurm.registry}: "
                                 f"{proc.stderr.strip()[-300:]}", hint="`docker login` to the registry, or unset "
                                 "slurm.registry where the nodes share this machine's Docker daemon")
        output(f"pushed {target}")
        return image

    # -- the queue -----------------------------------------------------------------------------------
    def list_jobs(self, labels: dict[str, str]) -> list[QueueJob]:
        return [_queue_job(j) for j in self._jobs() if j.tags]

    def lookup(self, handle: AgentHandle) -> QueueJob | None:
        found = [j for j in self._jobs() if j.id == handle.id]
        if not found:  # forgotten by squeue (MinJobAge): sacct, if the cluster keeps accounting
            job = self.queue.job(handle.id)
            return _queue_job(job) if job is not None else None
        return _queue_job(found[0])

    def signal_job(self, handle: AgentHandle, signal: str) -> None:
        # docker runtime: the batch shell's trap stops the container with its grace; pyxis and
        # apptainer run the agent in a step, which gets the signal itself, as do the srun tasks of a
        # multi-node job (the comment's `nodes=N`), each stopping its node's container
        job = self.lookup(handle)
        nodes = int(job.labels.get(f"{LABEL}.nodes", "1")) if job is not None else 1
        self.queue.signal(handle.id, signal, batch=self.slurm.runtime == "docker" and nodes == 1)

    def cancel_job(self, handle: AgentHandle) -> None:
        self.queue.cancel(handle.id)

    def partitions(self) -> list[Partition]:
        from dtrun.backends.slurm.hosts import partitions

        return partitions(self.commands)

    def host_cpus(self) -> int | None:
        """The partition's CPUs: how many jobs of a run dtrun hands to the queue at once (the queue
        still decides which of them start)."""
        parts = [p for p in self.partitions() if p.name == self.slurm.partition or
                 (self.slurm.partition is None and p.default)]
        return sum(n.cpus for p in parts for n in p.nodes) or None

    def describe_hosts(self) -> tuple[str, object]:
        from dtrun.backends.slurm.hosts import describe

        return describe(self.partitions(), str(self.slurm.login))

    def _jobs(self) -> list[SlurmJob]:
        now = time.monotonic()
        if self._listing is None or now - self._listing[0] > LISTING_TTL:
            self._listing = (now, self.queue.jobs())
        return self._listing[1]


def _queue_job(job: SlurmJob) -> QueueJob:
    tags = dict(job.tags)
    labels = {LABEL: "1", **{f"{LABEL}.{k}": v for k, v in tags.items()}}
    phase = CREATED if job.slurm_state in PENDING else RUNNING if job.slurm_state in ACTIVE else EXITED
    cancelled = "cancelled in Slurm (scancel) outside dtrun" if job.slurm_state == "CANCELLED" else None
    code = job.exit_code if job.exit_code is not None else (128 + job.signal if job.signal else None)
    reason = job.pending_reason if phase == CREATED else job.message
    if reason and reason.startswith("None: "):  # Slurm's "no reason": it is about to start
        reason = None
    return QueueJob(id=job.id, name=job.name, labels=labels, phase=phase, reason=reason, exit_code=code,
                    cancelled=cancelled)
