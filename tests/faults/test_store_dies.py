"""The store fails under a run: the disk fills up while the artifacts are saved, and the S3 server dies
in the middle of the upload. The run fails with a clear message naming the store, nothing half-written
is ever read back, and a retry once the store is healthy again saves the artifacts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dtrun.store.store import store_label
from tests.conftest import BUSYBOX_IMAGE, SESSION, DtrunRunner, remove_labelled
from tests.faults.reliability import Row
from tests.faults.test_store_faults import tmpfs
from tests.integration.test_store_s3 import REPO_ROOT, free_port

BIG = f"""
workflows:
  - name: big
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands:
      - mkdir -p out
      - head -c 200000000 /dev/urandom > out/big.bin
      - echo written
    artifacts: [out]
"""


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text[-3000:]


@pytest.mark.fault("the store's disk fills up while a 200 MB artifact is saved (64 MB tmpfs)",
                   "the run fails naming the store and `no space left`; every record still reads back; "
                   "after the disk is enlarged a retry saves the artifact")
def test_store_disk_fills_up_during_the_upload(make_project: Any, dtrun: DtrunRunner, tmp_path: Path,
                                               fault_row: Row, own_stores: list[str]) -> None:
    project = make_project({".dtrun/workflows.yaml": BIG})
    with tmpfs(tmp_path / "small", "64m") as small:
        env = {"DTRUN_STORE": str(small / "store")}
        own_stores.append(env["DTRUN_STORE"])
        failed = dtrun("run", "big", "--no-cache", cwd=project, env=env)
        fault_row.runs = 1
        assert failed.code != 0
        no_traceback(failed.output)
        assert f"the store {small / 'store'}" in failed.stderr and "no space left" in failed.stderr, failed.stderr
        for record in (small / "store").rglob("*.json"):
            json.loads(record.read_text())  # no half-written record
        assert not [p for p in (small / "store").rglob("*") if ".tmp-" in p.name]
        status = dtrun("status", "--json", "--last", "1", cwd=project, env=env)
        assert status.code == 0, status.output
        assert json.loads(status.stdout)[0]["jobs"][0]["state"] == "FAILED"

        subprocess.run(["mount", "-o", "remount,size=600m", str(small)], check=True)
        retried = dtrun("run", "big", "--no-cache", cwd=project, env=env)
        fault_row.runs = 2
        assert retried.code == 0, retried.output[-3000:]
        job = json.loads(dtrun("status", "--json", "--last", "1", cwd=project, env=env).stdout)[0]["jobs"][0]
        assert [(a["path"], a["files"]) for a in job["artifacts"]] == [("out", 1)]
        fault_row.artifacts_saved = 1


@pytest.fixture
def own_stores() -> Iterator[list[str]]:
    """Stores a test uses instead of the `dtrun` fixture's: their runs' containers are removed at the end.
    A run whose outputs could not be saved keeps its container on purpose (a later command finishes it)."""
    urls: list[str] = []
    yield urls
    for url in urls:
        remove_labelled("dev.dtrun.store", store_label(url))


def start_moto(port: int, state: Path) -> int:
    env = {**os.environ, "DTRUN_SERVICES_DIR": str(state), "VENV": str(Path(sys.executable).parent.parent)}
    subprocess.run([str(REPO_ROOT / "scripts" / "start-moto"), str(port)], check=True, env=env, cwd=REPO_ROOT)
    return int((state / f"moto-{port}" / "pid").read_text())


@pytest.mark.fault("the S3 server (moto) killed while a 200 MB artifact is uploaded",
                   "the run fails naming the store, no traceback, the client does not hang; with the server back "
                   "a retry saves the artifact")
def test_s3_server_dies_mid_upload(make_project: Any, dtrun: DtrunRunner, tmp_path: Path, fault_row: Row,
                                   own_stores: list[str]) -> None:
    pytest.importorskip("s3fs", reason="the s3 extra (s3fs) is not installed")
    import fsspec

    port = free_port()
    pid = start_moto(port, tmp_path)
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"dtrun-dies-{SESSION}".lower()
    url = f"s3://{bucket}/team"
    own_stores.append(url)
    aws = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "2", "DTRUN_STORE": url}

    def make_bucket() -> Any:
        fs = fsspec.filesystem("s3", endpoint_url=endpoint, key="test", secret="test", skip_instance_cache=True)
        fs.mkdir(bucket)
        return fs

    fs = make_bucket()
    project = make_project({".dtrun/workflows.yaml": BIG})
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", "run", "big", "--no-cache"], cwd=project, text=True,
                            env={**dtrun.env, **aws}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while True:
            states = []
            for path in fs.glob(f"{bucket}/team/repos/**/job.json"):
                with contextlib.suppress(Exception):
                    states.append(json.loads(fs.cat_file(path))["state"])
            if "UPLOADING" in states or proc.poll() is not None:
                break
            assert time.monotonic() < deadline, "the job never reached UPLOADING"
            fs.invalidate_cache()
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    fault_row.runs = 1
    assert proc.returncode != 0
    no_traceback(err)
    assert f"the store {url}" in err, err[-3000:]

    start_moto(port, tmp_path)  # a new, empty server: the retry starts from nothing
    make_bucket()
    retried = dtrun("run", "big", "--no-cache", cwd=project, env=aws)
    fault_row.runs = 2
    assert retried.code == 0, retried.output[-3000:]
    listing = dtrun("artifacts", retried.stderr.split("run ", 1)[1].split(":", 1)[0], cwd=project, env=aws)
    assert "out/big.bin" in listing.stdout, listing.output
    fault_row.artifacts_saved = 1
    with contextlib.suppress(ProcessLookupError, ValueError, FileNotFoundError):
        os.kill(int((tmp_path / f"moto-{port}" / "pid").read_text()), signal.SIGTERM)
