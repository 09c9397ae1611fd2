"""A private one-node Slurm cluster for this test session, started by `scripts/start-slurm`.

The cluster lives under a folder of this session (its own config, munge socket, ports, state), so a
developer's cluster or another session's is not disturbed; it is stopped and removed at the end.
Where it cannot be started (not root and the packages missing, no `mknod`), the tests are skipped
with the script's own words as the reason, never reported as passed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dtrun.backends.slurm.commands import SlurmCommands
from dtrun.backends.slurm.settings import Login
from tests.conftest import SESSION

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "start-slurm"


@dataclass(frozen=True)
class Cluster:
    folder: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True, check=check, timeout=60)


def _parse_exports(text: str, base: dict[str, str]) -> dict[str, str]:
    """`export NAME=VALUE` lines as the shell would read them (only `${NAME:-default}` is used)."""
    import re

    env = dict(base)
    for line in text.splitlines():
        match = re.fullmatch(r"export (\w+)=(.*)", line.strip())
        if not match:
            continue
        name, value = match.groups()
        default = re.fullmatch(r"\$\{(\w+):-(.*)\}", value)
        env[name] = (base.get(default.group(1)) or default.group(2)) if default else value
    return env


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Cluster]:
    if shutil.which("bash") is None:
        pytest.skip("bash is needed to start the Slurm cluster")
    folder = Path(tempfile.gettempdir()) / f"dtrun-slurm-test-{SESSION}"
    env = {**os.environ, "DTRUN_SLURM_DIR": str(folder)}
    env.pop("DTRUN_STORE", None)
    proc = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        subprocess.run([str(SCRIPT), "stop", "--clean"], env=env, capture_output=True, timeout=60)
        pytest.skip(f"no local Slurm cluster: {proc.stderr.strip()[-400:]}")
    try:
        yield Cluster(folder, _parse_exports(proc.stdout, env))
    finally:
        subprocess.run([str(SCRIPT), "stop", "--clean"], env=env, capture_output=True, timeout=60)


@pytest.fixture
def slurm_commands(slurm_cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlurmCommands]:
    """Slurm's commands as the backend runs them with `slurm.login: local`, aimed at this cluster."""
    monkeypatch.setenv("SLURM_CONF", slurm_cluster.env["SLURM_CONF"])
    with SlurmCommands(Login()) as commands:
        yield commands


@pytest.fixture(scope="session")
def agent_image(slurm_cluster: Cluster) -> Iterator[str]:
    """The base image plus dtrun's agent (this checkout's `dtrun` package and fsspec, copied in: no
    network). The real backend ships the agent as a cached image layer; this stands in for it."""
    import fsspec

    from tests.conftest import BASE_IMAGE

    if shutil.which("docker") is None:
        pytest.skip("the docker runtime needs the docker CLI")
    context = slurm_cluster.folder / "agent-image"
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(Path(__file__).resolve().parents[3] / "dtrun", context / "dtrun",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(Path(fsspec.__file__).parent, context / "fsspec", ignore=shutil.ignore_patterns("__pycache__"))
    (context / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY . /opt/dtrun-agent/\n"
                                        "ENV PYTHONPATH=/opt/dtrun-agent\nRUN ln -sf python3 /usr/bin/python\n")
    tag = f"dtrun-test-slurm-agent:{SESSION}"
    proc = subprocess.run(["docker", "build", "-q", "--label", f"dev.dtrun.test={SESSION}", "-t", tag, str(context)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"building the agent image failed: {proc.stderr[-800:]}")
    try:
        yield tag
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)
