"""Slurm's queue in dtrun's terms: submit, find, signal and cancel jobs; their states, pending reasons
and exit codes.

`squeue -t all` is the ground truth while Slurm remembers a job (running, pending, and finished ones
for `MinJobAge` seconds); `sacct` (when the cluster keeps accounting) answers for older ones. A job
neither knows about is gone: the engine then relies on the agent's exit record in the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import field

from dtrun.backends.slurm.commands import SlurmCommands, SlurmError
from dtrun.backends.slurm.script import job_name, parse_comment
from dtrun.store.records import State
from dtrun.structs import struct

_SEP = "\x1f"  # no job name or comment of ours contains it
_SQUEUE_FIELDS = ("JobID", "Name", "State", "Reason", "exit_code", "Comment", "NodeList")
_SACCT_FIELDS = ("JobID", "JobName", "State", "Reason", "ExitCode", "Comment", "NodeList")

PENDING = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",
                     "SUSPENDED", "PREEMPTED"})
ACTIVE = frozenset({"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"})
_FAILED = {"FAILED": "the job failed", "OUT_OF_MEMORY": "out of memory (raise resources.memory)",
           "TIMEOUT": "the time limit (timeout) was reached", "NODE_FAIL": "the node failed",
           "BOOT_FAIL": "the node failed to boot", "DEADLINE": "the job's deadline passed"}

#: What the common pending reasons mean, in a user's words (`squeue` prints only the code).
REASONS = {
    "Resources": "waiting for free resources (GPUs, CPUs or memory) on a node",
    "Priority": "jobs with a higher priority are ahead in the queue",
    "Dependency": "waiting for another job to finish",
    "ReqNodeNotAvail": "the nodes it needs are unavailable (down, drained or reserved)",
    "PartitionDown": "the partition is down",
    "PartitionNodeLimit": "it asks for more nodes than the partition allows",
    "PartitionTimeLimit": "its time limit is above the partition's",
    "QOSMaxGRESPerUser": "you already use as many GPUs as your QOS allows",
    "AssocGrpGRES": "your account already uses as many GPUs as it may",
    "JobHeldUser": "held (scontrol release JOBID)",
    "JobHeldAdmin": "held by an administrator",
    "BeginTime": "its start time has not come yet",
    "Reservation": "waiting for its reservation",
    "BadConstraints": "no node can ever satisfy what it asks for",
    "None": "about to be scheduled",
}


@struct(frozen=True)
class SlurmJob:
    id: str
    name: str
    slurm_state: str
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    node: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def state(self) -> State:
        """dtrun's state of the job (pending in the queue is SUBMITTED; `pending_reason` says why)."""
        if self.slurm_state in PENDING:
            return State.SUBMITTED
        if self.slurm_state in ACTIVE:
            return State.RUNNING
        if self.slurm_state == "COMPLETED":
            return State.DONE
        if self.slurm_state == "CANCELLED":
            return State.STOPPED
        return State.FAILED

    @property
    def finished(self) -> bool:
        return self.state.finished

    @property
    def pending_reason(self) -> str | None:
        """`Resources: waiting for free resources ...` for a queued job; None otherwise."""
        if self.state is not State.SUBMITTED:
            return None
        if self.slurm_state == "SUSPENDED":
            return "suspended by Slurm"
        code = (self.reason or "None").split(",")[0]
        meaning = REASONS.get(code)
        return f"{code}: {meaning}" if meaning else code

    @property
    def message(self) -> str | None:
        """Why a finished job did not succeed, as the engine shows it."""
        if self.slurm_state in _FAILED:
            text = _FAILED[self.slurm_state]
            if self.exit_code:
                text += f" (exit code {self.exit_code})"
            elif self.signal:
                text += f" (killed by signal {self.signal})"
            return text
        if self.slurm_state == "CANCELLED":
            return "cancelled in Slurm (scancel)"
        return None


class SlurmQueue:
    def __init__(self, commands: SlurmCommands) -> None:
        self.commands = commands

    def submit(self, script: str, env: Mapping[str, str] | None = None) -> str:
        """`sbatch --parsable` with the script on standard input; the new job's id."""
        out = self.commands.run(["sbatch", "--parsable"], input=script, env=env, check=False)
        if out.code != 0:
            detail = out.stderr.strip().splitlines()[-1:] or [f"exit code {out.code}"]
            raise SlurmError(f"sbatch refused the job: {detail[0].removeprefix('sbatch: error: ')}",
                             hint="`dtrun hosts` shows the partitions and the GPUs, CPUs and memory they offer")
        job_id = out.stdout.strip().split(";")[0]
        if not job_id.isdigit():
            raise SlurmError(f"sbatch printed no job id: {out.stdout.strip()!r}")
        return job_id

    def jobs(self, *, ids: list[str] | None = None, name: str | None = None) -> list[SlurmJob]:
        """The jobs Slurm remembers (all states), optionally only some ids or one name."""
        args = ["squeue", "-h", "-t", "all", "-O", ",".join(f"{f}:{_SEP}" for f in _SQUEUE_FIELDS)]
        if ids:
            args += ["-j", ",".join(ids)]
        if name:
            args += ["-n", name]
        out = self.commands.run(args, check=False)
        if out.code != 0:
            if ids and "Invalid job id" in out.stderr:
                return []  # squeue refuses ids it has forgotten
            raise SlurmError(f"squeue failed: {out.stderr.strip()}",
                             hint="is slurmctld running? `scontrol ping` tells")
        return parse_squeue(out.stdout)

    def job(self, job_id: str) -> SlurmJob | None:
        """One job: from squeue while Slurm remembers it, then from sacct; None when neither does."""
        found = self.jobs(ids=[job_id])
        if found:
            return found[0]
        return self._sacct(job_id)

    def find(self, run: str, job_id: str) -> list[SlurmJob]:
        """The Slurm jobs of one dtrun job (its name is deterministic): how a client that was killed
        between `sbatch` and recording the id finds the job instead of submitting it twice."""
        return self.jobs(name=job_name(run, job_id))

    def dtrun_jobs(self, store_label: str | None = None, run: str | None = None) -> list[SlurmJob]:
        """Every job dtrun submitted (by their comments), optionally of one store and one run."""
        return [j for j in self.jobs() if j.tags
                and (store_label is None or j.tags.get("store") == store_label)
                and (run is None or j.tags.get("run") == run)]

    def signal(self, job_id: str, signal: str = "TERM", *, batch: bool = False) -> None:
        """`scancel --signal`: to the job's steps (pyxis, apptainer: the agent runs in a step), or with
        `batch` to the batch shell only (docker: its trap stops the container gracefully)."""
        args = ["scancel", f"--signal={signal}", *(["--batch"] if batch else []), job_id]
        self.commands.run(args)

    def cancel(self, job_id: str) -> None:
        """`scancel`: TERM to everything of the job, then KILL after the cluster's KillWait."""
        self.commands.run(["scancel", job_id])

    def _sacct(self, job_id: str) -> SlurmJob | None:
        out = self.commands.run(["sacct", "-n", "-P", "-X", "--delimiter", _SEP, "-j", job_id, "-o",
                                 ",".join(_SACCT_FIELDS)], check=False)
        if out.code != 0:  # accounting disabled on this cluster: the job is simply gone
            return None
        jobs = parse_sacct(out.stdout)
        return jobs[0] if jobs else None


def parse_squeue(text: str) -> list[SlurmJob]:
    jobs = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(_SEP)]
        if len(parts) < len(_SQUEUE_FIELDS):
            continue
        jid, name, state, reason, status, comment, node = parts[: len(_SQUEUE_FIELDS)]
        code, sig = _wait_status(status)
        jobs.append(SlurmJob(id=jid, name=name, slurm_state=_state(state), reason=_none(reason), exit_code=code,
                             signal=sig, node=_none(node), tags=parse_comment(comment)))
    return jobs


def parse_sacct(text: str) -> list[SlurmJob]:
    """`sacct -P` lines; ExitCode there is `code:signal`."""
    jobs = []
    for line in text.splitlines():
        parts = line.split(_SEP)
        if len(parts) < len(_SACCT_FIELDS):
            continue
        jid, name, state, reason, exit_code, comment, node = parts[: len(_SACCT_FIELDS)]
        match = re.fullmatch(r"(\d+):(\d+)", exit_code.strip())
        code, sig = (int(match.group(1)), int(match.group(2))) if match else (None, None)
        jobs.append(SlurmJob(id=jid, name=name, slurm_state=_state(state), reason=_none(reason), exit_code=code,
                             signal=sig or None, node=_none(node), tags=parse_comment(comment)))
    return jobs


def _wait_status(text: str) -> tuple[int | None, int | None]:
    """squeue's `exit_code` is the raw wait status: (exit code, signal)."""
    try:
        status = int(text)
    except ValueError:
        return None, None
    if status & 0x7F:
        return None, status & 0x7F
    return status >> 8, None


def _state(text: str) -> str:
    """`CANCELLED by 0` (sacct) -> `CANCELLED`."""
    return text.split()[0].upper() if text.strip() else "UNKNOWN"


def _none(text: str) -> str | None:
    return None if text in ("", "(null)", "None", "N/A") else text
