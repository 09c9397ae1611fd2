"""examples/digits end to end on the Slurm cluster with the store on S3 (moto's server on loopback).

Three jobs in a chain (prepare -> train -> evaluate, evaluate also needing prepare): each runs in its
own Slurm job; the code and the dep artifacts reach the node only through S3, and the outputs come
back the same way. The image gets `s3fs` for the agent from the normal build (its pip packages).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SESSION, DtrunRunner, git
from tests.integration.slurm.conftest import Cluster

pytestmark = [pytest.mark.xdist_group("slurm"), pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[str]:
    pytest.importorskip("s3fs", reason="the s3 extra (s3fs) is not installed")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {**os.environ, "DTRUN_SERVICES_DIR": str(tmp_path / "services"),
           "VENV": str(Path(sys.executable).parent.parent)}
    subprocess.run([str(REPO_ROOT / "scripts" / "start-moto"), str(port)], check=True, env=env, cwd=REPO_ROOT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        pid = tmp_path / "services" / f"moto-{port}" / "pid"
        if pid.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid.read_text()), signal.SIGTERM)


def test_digits_runs_on_slurm_with_the_store_on_s3(dtrun: DtrunRunner, slurm_cluster: Cluster, moto: str,
                                                   tmp_path: Path) -> None:
    import fsspec

    fs: Any = fsspec.filesystem("s3", endpoint_url=moto, key="test", secret="test")
    bucket = f"dtrun-slurm-{SESSION}".lower()
    fs.mkdir(bucket)
    url = f"s3://{bucket}/team"
    project = tmp_path / "digits"
    shutil.copytree(REPO_ROOT / "examples" / "digits", project)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "digits")
    exported = {k: v for k, v in slurm_cluster.env.items() if k.startswith(("DTRUN_SLURM_", "SLURM_CONF"))}
    env = {**dtrun.env, **exported, "DTRUN_BACKEND": "slurm", "DTRUN_STORE": url, "AWS_ENDPOINT_URL": moto,
           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    runner = DtrunRunner(env=env, store=dtrun.store)
    result = runner("run", "evaluate", cwd=project, timeout=1200)
    assert result.code == 0, result.output[-3000:]
    assert "Test accuracy: 0." in result.stdout
    for workflow in ("prepare", "train", "evaluate"):
        assert f"submitted {workflow} as Slurm job" in result.output
        assert f"DONE {workflow}" in result.output
    jobs = [json.loads(fs.cat(p)) for p in fs.glob(f"{bucket}/team/repos/**/jobs/*/job.json")]
    saved = {j["workflow"]: [a["path"] for a in j["artifacts"]] for j in jobs}
    assert saved == {"prepare": ["data"], "train": ["model"], "evaluate": ["report"]}
    assert not any(Path(dtrun.store).rglob("*.json")), "nothing went to a local store"
    download = runner("artifacts", next(j["run"] for j in jobs), "-o", str(tmp_path / "out"),
                      cwd=project)
    assert download.code == 0, download.output
    metrics = next((tmp_path / "out").rglob("metrics.json"))
    assert json.loads(metrics.read_text())["accuracy"] > 0.9
