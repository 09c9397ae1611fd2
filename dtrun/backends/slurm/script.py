"""A dtrun job -> the sbatch script that runs it: resources as `#SBATCH` lines, then the container
runtime's command line running the in-job agent (`python -m dtrun.agent`).

The script holds no secret: the job manifest names the secrets, whose values travel in sbatch's
environment (`--export=ALL`) and reach the container as environment variables (never text in a
command line). Every name and comment is deterministic, so `squeue`/`sacct` find the job again after
the client is gone:

    --job-name=dtrun-<run>-<job id>
    --comment=dtrun,run=<run>,job=<job id>,workflow=<workflow>,store=<store label>

(no spaces: `scontrol show job -o` prints the comment unquoted among other `key=value` words).
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import field

from dtrun.backends.slurm.settings import STORE_ENV, SlurmSettings
from dtrun.providers.torchrun_launch import Torchrun
from dtrun.structs import struct

#: The comment's first word, so a listing picks out dtrun's jobs among everyone else's.
COMMENT_TAG = "dtrun"


@struct(frozen=True)
class SbatchJob:
    """What the script needs of one job (the backend fills it from a plan job and its manifest)."""

    run: str
    job_id: str
    workflow: str
    image: str
    #: The job manifest as JSON text (`dtrun.agent.manifest.JobManifest.to_json()`).
    manifest: str
    workspace: str = "/workspace"
    working_dir: str = "/workspace"
    gpus: int = 0
    gpu_name: str | None = None
    memory: int | None = None  # bytes
    cpus: float | None = None
    shm_size: int | None = None  # bytes
    interruptible: bool = False
    timeout: int | None = None  # seconds
    #: Names of the secret variables (their values are in sbatch's environment, not in the script).
    secrets: tuple[str, ...] = ()
    #: `dtrun.store.store.store_label(url)`: which store the job writes to.
    store_label: str = ""
    #: A folder store shared by the nodes: mounted into the container at the same path.
    store_mount: str | None = None
    env_names: tuple[str, ...] = field(default=STORE_ENV)
    #: The store namespace (`github.com/owner/name`): with the store label, where the job's records are.
    repo: str = ""
    #: A multi-node torchrun: `--nodes=N`, one srun task per node, node 0 the rendezvous host.
    torchrun: Torchrun | None = None

    @property
    def nodes(self) -> int:
        return self.torchrun.nodes if self.torchrun is not None else 1


def job_name(run: str, job_id: str) -> str:
    return f"dtrun-{run}-{job_id}"


def comment(job: SbatchJob) -> str:
    text = f"{COMMENT_TAG},run={job.run},job={job.job_id},workflow={job.workflow},store={job.store_label}"
    text += f",repo={job.repo}" if job.repo else ""
    # the node count, so a signal finds the srun tasks of a multi-node job (`SlurmBackend.signal_job`)
    return text + (f",nodes={job.nodes}" if job.nodes > 1 else "")


def parse_comment(text: str) -> dict[str, str]:
    """`dtrun,run=a,job=b,...` -> {"run": "a", "job": "b", ...}; {} for a job dtrun did not submit."""
    words = text.strip().split(",")
    if not words or words[0] != COMMENT_TAG:
        return {}
    return dict(w.split("=", 1) for w in words[1:] if "=" in w)


def slurm_time(seconds: int) -> str:
    """Seconds -> Slurm's `D-HH:MM:SS` (its limits are whole minutes: rounded up, at least one)."""
    minutes = max(1, math.ceil(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return f"{days}-{hours:02d}:{mins:02d}:00"


def gres(job: SbatchJob) -> str | None:
    if not job.gpus:
        return None
    if job.gpu_name:
        kind = re.sub(r"[^a-z0-9_.-]+", "_", job.gpu_name.lower())
        return f"gpu:{kind}:{job.gpus}"
    return f"gpu:{job.gpus}"


def sbatch_options(job: SbatchJob, settings: SlurmSettings) -> list[str]:
    shape = ["--nodes=1", "--ntasks=1"] if job.nodes == 1 else [f"--nodes={job.nodes}", "--ntasks-per-node=1"]
    opts = [f"--job-name={job_name(job.run, job.job_id)}", f"--comment={comment(job)}", *shape,
            f"--output={settings.output_dir.rstrip('/')}/dtrun-%j.out", "--open-mode=append",
            "--export=ALL"]
    if settings.partition:
        opts.append(f"--partition={settings.partition}")
    if settings.account:
        opts.append(f"--account={settings.account}")
    if job.cpus:
        opts.append(f"--cpus-per-task={math.ceil(job.cpus)}")
    if job.memory:
        opts.append(f"--mem={math.ceil(job.memory / 2**20)}M")
    if (spec := gres(job)) is not None:
        opts.append(f"--gres={spec}")
    if job.timeout:
        opts.append(f"--time={slurm_time(job.timeout)}")
    opts.append("--requeue" if job.interruptible else "--no-requeue")
    return opts


def render(job: SbatchJob, settings: SlurmSettings) -> str:
    header = ["#!/bin/bash", f"# dtrun job {job.job_id}: workflow {job.workflow} of run {job.run}"]
    header += [f"#SBATCH {_sbatch_quote(o)}" for o in sbatch_options(job, settings)]
    body = [f"export DTRUN_AGENT_MANIFEST={shlex.quote(job.manifest)}"]
    if job.torchrun is not None and job.nodes > 1:
        from dtrun.backends.slurm.nodes import multi_node

        return "\n".join([*header, "", *body, *multi_node(job, settings), ""])
    runtime = {"docker": _docker, "pyxis": _pyxis, "apptainer": _apptainer}[settings.runtime]
    return "\n".join([*header, "", *body, *runtime(job, settings), ""])


def node_image(image: str, settings: SlurmSettings) -> str:
    """The image as the nodes pull it: under `slurm.registry` when one is set."""
    if not settings.registry:
        return image
    return f"{settings.registry.rstrip('/')}/{image.split('/')[-1]}"


def enroot_uri(image: str) -> str:
    """Docker's `host:5000/team/img:tag` -> enroot's `host:5000#team/img:tag` (pyxis' image syntax)."""
    first, slash, rest = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return f"{first}#{rest}"
    return image


def _agent(settings: SlurmSettings) -> list[str]:
    return [settings.agent_python, "-m", "dtrun.agent"]


def _docker(job: SbatchJob, settings: SlurmSettings, *, node: bool = False) -> list[str]:
    """The batch step runs the container; its traps stop it on TERM and remove it on any exit, so a
    `scancel` (or a time limit) never leaves a container behind."""
    # An option and its value are one word here, so a wrapped line never separates them.
    labels = {"dev.dtrun.run": job.run, "dev.dtrun.job": job.job_id, "dev.dtrun.store": job.store_label}
    run = ["docker run", '--name "$DTRUN_CONTAINER"', "--sig-proxy=false", "--network=host",
           *("--label " + shlex.quote(f"{k}={v}") for k, v in labels.items()),
           '--label "dev.dtrun.slurm-job=$SLURM_JOB_ID"', "--workdir " + shlex.quote(job.working_dir)]
    if job.shm_size:
        run.append(f"--shm-size={job.shm_size}")
    if job.memory:
        run.append(f"--memory={job.memory}")
    if job.cpus:
        run.append(f"--cpus={job.cpus:g}")
    names = ["DTRUN_AGENT_MANIFEST", "SLURM_JOB_ID", "SLURM_RESTART_COUNT", *job.env_names, *job.secrets]
    if node:  # one node of a multi-node torchrun: torchrun's options, the node's rank among them
        names += list(TORCHRUN_ENV)
        run.append('--label "dev.dtrun.node=$SLURM_NODEID"')
    if job.gpus and settings.docker_gpus:
        run.append('--gpus "\\"device=$CUDA_VISIBLE_DEVICES\\""')
    elif job.gpus:
        names.append("CUDA_VISIBLE_DEVICES")
    run += [f"-e {name}" for name in dict.fromkeys(names)]
    if job.store_mount:
        run.append("-v " + shlex.quote(f"{job.store_mount}:{job.store_mount}"))
    run += ["--entrypoint " + shlex.quote(settings.agent_python), shlex.quote(node_image(job.image, settings)),
            "-m dtrun.agent"]
    grace = math.ceil(settings.stop_grace) + 5
    return [
        f"DTRUN_CONTAINER=dtrun-{job.job_id}-$SLURM_JOB_ID" + ("-$SLURM_NODEID" if node else ""),
        f'dtrun_stop() {{ docker stop --time={grace} "$DTRUN_CONTAINER" >/dev/null 2>&1 || true; }}',
        'dtrun_cleanup() { docker rm -f "$DTRUN_CONTAINER" >/dev/null 2>&1 || true; }',
        "trap dtrun_stop TERM INT",
        "trap dtrun_cleanup EXIT",
        "dtrun_cleanup  # left by an earlier attempt of a requeued job",
        _wrap(run) + " &",
        "DTRUN_PID=$!",
        "# wait again after a trap: the exit code is the container's, once it has stopped",
        'while :; do wait "$DTRUN_PID"; DTRUN_RC=$?; kill -0 "$DTRUN_PID" 2>/dev/null || break; done',
        "# a signal may have ended the docker client first: the job's exit code is the container's",
        'if DTRUN_CODE=$(docker wait "$DTRUN_CONTAINER" 2>/dev/null); then DTRUN_RC=$DTRUN_CODE; fi',
        'exit "$DTRUN_RC"',
    ]


#: The variables a node's container needs of a multi-node torchrun (`torchrun_launch.common_env`, the rank).
TORCHRUN_ENV = ("PET_NNODES", "PET_NPROC_PER_NODE", "PET_MASTER_ADDR", "PET_MASTER_PORT", "PET_MAX_RESTARTS",
                "PET_RDZV_BACKEND", "PET_NODE_RANK")


def _pyxis(job: SbatchJob, settings: SlurmSettings) -> list[str]:
    """srun with pyxis' flags; signals from `scancel --signal` reach the step, srun passes them on."""
    mounts = [f"{job.store_mount}:{job.store_mount}"] if job.store_mount else []
    srun = ["exec", "srun", "--ntasks=1", f"--container-image={enroot_uri(node_image(job.image, settings))}",
            f"--container-workdir={job.working_dir}", "--no-container-mount-home", "--container-writable"]
    if mounts:
        srun.append(f"--container-mounts={','.join(mounts)}")
    return [_wrap([shlex.quote(a) if i else a for i, a in enumerate(srun)] + [shlex.join(_agent(settings))])]


def _apptainer(job: SbatchJob, settings: SlurmSettings) -> list[str]:
    """apptainer's root filesystem is read-only: the workspace is a scratch folder of the job's own."""
    cmd = ["srun --ntasks=1", "apptainer exec", "--no-home", "--writable-tmpfs",
           f'--bind "$DTRUN_SCRATCH":{shlex.quote(job.workspace)}', "--pwd " + shlex.quote(job.working_dir)]
    if job.gpus:
        cmd.append("--nv")
    if job.store_mount:
        cmd.append("--bind " + shlex.quote(f"{job.store_mount}:{job.store_mount}"))
    cmd += [shlex.quote(f"docker://{node_image(job.image, settings)}"), shlex.join(_agent(settings))]
    return [
        'DTRUN_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/dtrun-XXXXXX")',
        'trap \'rm -rf "$DTRUN_SCRATCH"\' EXIT',
        _wrap(cmd),
    ]


def _wrap(words: list[str]) -> str:
    """One command, continued over lines so a golden file (and a person) can read it."""
    lines, current = [], ""
    for word in words:
        if current and len(current) + len(word) > 100:
            lines.append(current + " \\")
            current = "  " + word
        else:
            current = f"{current} {word}" if current else word
    return "\n".join([*lines, current])


def _sbatch_quote(option: str) -> str:
    """`#SBATCH` lines are split by Slurm like a shell does: quote values with spaces."""
    name, eq, value = option.partition("=")
    return f'{name}="{value}"' if eq and " " in value else option
