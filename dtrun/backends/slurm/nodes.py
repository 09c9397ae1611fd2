"""The body of a multi-node sbatch script (a torchrun over `--nodes=N`): one srun task per node.

The batch shell runs on the allocation's first node only, so everything that differs per node is read
inside the task: `PET_NODE_RANK` from the task's `SLURM_NODEID` (the agent on node 0 writes the job's log,
status and outputs; the others write `logs-nodeN.txt` / `agent-nodeN.json`). What the nodes share
(torchrun's options, node 0's address as the rendezvous host) is exported by the batch shell and reaches
every task through srun's environment.

With the docker runtime each task runs its node's container (the single-node script's lines, as a
function the tasks call), so its traps stop the container on a signal to the step and remove it on exit.
`--kill-on-bad-exit` ends every node when one fails: all ranks fail together, dtrun decides retries.
"""

from __future__ import annotations

import shlex

from dtrun.backends.slurm.script import (
    SbatchJob,
    _agent,
    _docker,
    _wrap,
    enroot_uri,
    node_image,
)
from dtrun.backends.slurm.settings import SlurmSettings
from dtrun.providers.torchrun_launch import slurm_prologue

#: One task per node; the first failing node ends the others.
_SRUN = ["srun", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
#: The agent as a task runs it: the node's rank from Slurm, then the agent in the runtime.
_RANK = 'export PET_NODE_RANK="$SLURM_NODEID"'


def multi_node(job: SbatchJob, settings: SlurmSettings) -> list[str]:
    assert job.torchrun is not None
    srun = [*_SRUN, f"--nodes={job.nodes}"]
    lines = slurm_prologue(job.torchrun.rendezvous("$PET_MASTER_ADDR"))
    if settings.runtime == "docker":
        body = [f"  {line}" if line else line for line in [_RANK, *_docker(job, settings, node=True)]]
        lines += ["dtrun_node() {", *body, "}", "export -f dtrun_node"]
        task = ["bash", "-c", "dtrun_node"]
        # the tasks stop their containers on a signal to the step (`scancel --signal` without --batch);
        # the batch shell itself waits for them, whatever it is sent
        return [*lines, "trap true TERM INT", _wrap([*srun, *task]) + " &", "DTRUN_PID=$!",
                'while :; do wait "$DTRUN_PID"; DTRUN_RC=$?; kill -0 "$DTRUN_PID" 2>/dev/null || break; done',
                'exit "$DTRUN_RC"']
    agent = "sh -c " + shlex.quote(f"{_RANK}; exec {shlex.join(_agent(settings))}")
    image = node_image(job.image, settings)
    if settings.runtime == "pyxis":
        cmd = [*srun, shlex.quote(f"--container-image={enroot_uri(image)}"),
               shlex.quote(f"--container-workdir={job.working_dir}"), "--no-container-mount-home",
               "--container-writable"]
        if job.store_mount:
            cmd.append(shlex.quote(f"--container-mounts={job.store_mount}:{job.store_mount}"))
        return [*lines, "exec " + _wrap([*cmd, agent])]
    # apptainer: a scratch workspace per node, made by the task on its own node
    cmd = ["apptainer exec", "--no-home", "--writable-tmpfs", '--bind "$DTRUN_SCRATCH":' + shlex.quote(job.workspace),
           "--pwd " + shlex.quote(job.working_dir)]
    if job.gpus:
        cmd.append("--nv")
    if job.store_mount:
        cmd.append("--bind " + shlex.quote(f"{job.store_mount}:{job.store_mount}"))
    cmd += [shlex.quote(f"docker://{image}"), agent]
    task = ['DTRUN_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/dtrun-XXXXXX")', 'trap \'rm -rf "$DTRUN_SCRATCH"\' EXIT',
            _wrap(cmd)]
    lines += ["dtrun_node() {", *(f"  {t}" for t in task), "}", "export -f dtrun_node"]
    return [*lines, "exec " + _wrap([*srun, "bash", "-c", "dtrun_node"])]
