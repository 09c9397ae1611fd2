"""`slurm.login: ssh://user@host`: Slurm's commands on a login node over one multiplexed connection.

The login node is this machine behind a private sshd on loopback (`scripts/start-slurm sshd`, its own
host key, client key and config: the user's ~/.ssh is never touched).
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from dtrun.backends.slurm.commands import SlurmCommands, SlurmError
from dtrun.backends.slurm.hosts import partitions
from dtrun.backends.slurm.queue import SlurmQueue
from dtrun.backends.slurm.settings import Login
from dtrun.store.records import State
from tests.integration.slurm.conftest import SCRIPT, Cluster, _parse_exports

pytestmark = pytest.mark.xdist_group("slurm")


@pytest.fixture(scope="module")
def login(slurm_cluster: Cluster) -> dict[str, str]:
    proc = subprocess.run([str(SCRIPT), "sshd"], env=slurm_cluster.env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"no sshd for a login node: {proc.stderr.strip()[-300:]}")
    return _parse_exports(proc.stdout, {})


def accepted(cluster: Cluster) -> int:
    return len(re.findall("Accepted publickey", (cluster.folder / "log" / "sshd.log").read_text()))


def test_commands_over_one_multiplexed_connection(slurm_cluster: Cluster, login: dict[str, str]) -> None:
    before = accepted(slurm_cluster)
    commands = SlurmCommands(Login.parse(login["DTRUN_SLURM_LOGIN"]), ssh_config=login["DTRUN_SLURM_SSH_CONFIG"])
    try:
        queue = SlurmQueue(commands)
        out = slurm_cluster.folder / "over-ssh.out"
        script = (f"#!/bin/bash\n#SBATCH --job-name=over-ssh\n#SBATCH --output={out}\n"
                  "echo \"secret=$SSH_SECRET\"\n")
        job_id = queue.submit(script, env={"SSH_SECRET": "it's a 'secret'"})
        deadline = time.monotonic() + 60
        while not (job := queue.job(job_id)) or not job.finished:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert job.state is State.DONE
        assert out.read_text() == "secret=it's a 'secret'\n"
        assert partitions(commands)[0].name == "debug"
    finally:
        commands.close()
    assert accepted(slurm_cluster) - before == 1  # every command above went through one connection
    assert commands._control_dir is None  # close() ended the master connection and removed its socket


def test_unreachable_login_node_is_a_clear_error(login: dict[str, str]) -> None:
    with SlurmCommands(Login.parse("ssh://root@127.0.0.1:1"), ssh_config=login["DTRUN_SLURM_SSH_CONFIG"]) as bad, \
            pytest.raises(SlurmError, match=r"cannot reach the login node ssh://root@127\.0\.0\.1:1"):
        bad.run(["sinfo"])
