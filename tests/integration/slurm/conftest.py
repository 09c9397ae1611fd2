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
