"""Parsing Slurm's listings (as Slurm 22.05 prints them, captured from the test cluster) and the text
sent to a login node over ssh."""

from __future__ import annotations

import subprocess

import pytest

from dtrun.backends.slurm.commands import SlurmError, remote_script
from dtrun.backends.slurm.hosts import parse_gres, parse_sinfo
from dtrun.backends.slurm.queue import parse_sacct, parse_squeue
from dtrun.store.records import State

S = "\x1f"


def line(*fields: str) -> str:
    return S.join(fields) + S


def test_squeue_states_exit_codes_and_tags() -> None:
    text = "\n".join([
        line("8", "dtrun-r-j1", "CANCELLED", "None", "15", "dtrun,run=r,job=j1,workflow=w,store=s", "node1"),
        line("6", "dtrun-r-j2", "FAILED", "NonZeroExitCode", "768", "dtrun,run=r,job=j2,workflow=w,store=s", "node1"),
        line("9", "dtrun-r-j3", "PENDING", "Resources", "0", "dtrun,run=r,job=j3,workflow=w,store=s", ""),
        line("10", "wrap", "COMPLETED", "None", "0", "(null)", "node1"),
        line("11", "dtrun-r-j4", "OUT_OF_MEMORY", "OutOfMemory", "0", "dtrun,run=r,job=j4", "node1"),
        "garbage line",
    ])
    jobs = {j.id: j for j in parse_squeue(text)}
    assert set(jobs) == {"8", "6", "9", "10", "11"}
    assert (jobs["8"].state, jobs["8"].signal, jobs["8"].message) == (State.STOPPED, 15, "cancelled in Slurm (scancel)")
    assert (jobs["6"].state, jobs["6"].exit_code) == (State.FAILED, 3)
    assert jobs["6"].message == "the job failed (exit code 3)"
    assert jobs["9"].state is State.SUBMITTED and jobs["9"].node is None
    assert jobs["9"].pending_reason == "Resources: waiting for free resources (GPUs, CPUs or memory) on a node"
    assert jobs["6"].pending_reason is None
    assert jobs["10"].tags == {} and jobs["10"].state is State.DONE
    assert jobs["11"].message == "out of memory (raise resources.memory)"
    assert jobs["8"].tags["job"] == "j1"


def test_sacct_lines() -> None:
    [job] = parse_sacct(line("12", "dtrun-r-j", "CANCELLED by 0", "None", "0:15", "dtrun,run=r,job=j", "n1"))
    assert (job.state, job.exit_code, job.signal, job.tags["run"]) == (State.STOPPED, 0, 15, "r")
    [job] = parse_sacct(line("13", "x", "TIMEOUT", "TimeLimit", "0:0", "", "n1"))
    assert job.state is State.FAILED and job.message == "the time limit (timeout) was reached"


def test_sinfo_partitions_nodes_and_free_gpus() -> None:
    text = "\n".join([  # sinfo lists idle nodes first: the default partition still comes first
        line("node3", "cpu", "idle", "0/16/0/16", "32000", "0", "(null)", "(null)"),
        line("node1", "gpu*", "mixed", "2/6/0/8", "8192", "1000", "gpu:a100:4(S:0-1)", "gpu:a100:1(IDX:0)"),
        line("node2", "gpu*", "drained", "0/8/0/8", "8192", "0", "gpu:a100:4", "gpu:a100:0(IDX:N/A)"),
    ])
    gpu, cpu = parse_sinfo(text)
    assert (gpu.name, gpu.default, cpu.default) == ("gpu", True, False)
    assert gpu.gpus == {"a100": (3, 8)}  # the drained node's GPUs are not free
    node1 = gpu.nodes[0]
    assert (node1.cpus, node1.cpus_free, node1.memory_free_mb, node1.available) == (8, 6, 7192, True)
    assert not gpu.nodes[1].available
    assert cpu.nodes[0].gpus == [] and cpu.gpus == {}


def test_gres_forms() -> None:
    gpus = parse_gres("gpu:a100:2(S:0),gpu:v100:1,gpu:3", "gpu:a100:2(IDX:0-1),gpu:v100:0")
    assert [(g.kind, g.total, g.free) for g in gpus] == [("a100", 2, 0), ("v100", 1, 1), (None, 3, 3)]


def test_remote_script_keeps_secrets_out_of_the_command_line_and_quotes_input() -> None:
    script = remote_script(["sbatch", "--parsable"], "#!/bin/bash\necho 'DTRUN_X' $HOME\n", {"TOKEN": "a b'c"})
    assert script.startswith("export TOKEN='a b'\"'\"'c'\n")
    # Run it with a local bash instead of ssh: the input arrives unchanged, the secret as env.
    out = subprocess.run(["bash", "-s"], input=script.replace("sbatch --parsable", "cat; echo \"$TOKEN\"", 1)
                         .replace("exec cat; echo \"$TOKEN\"", "{ cat; echo \"$TOKEN\"; }"),
                         capture_output=True, text=True, check=True)
    assert out.stdout == "#!/bin/bash\necho 'DTRUN_X' $HOME\na b'c\n"
    with pytest.raises(SlurmError, match="not a valid environment variable name"):
        remote_script(["true"], None, {"A B": "x"})
