"""The whole download -> train chain with the store on S3 (moto's server on loopback, started here)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SESSION, DtrunRunner, remove_labelled
from tests.integration.test_artifacts import download, run_name, workflows
from tests.integration.test_tags import TRAIN_ON_TAG

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("s3fs", reason="the s3 extra (s3fs) is not installed")
    port = free_port()
    state = tmp_path_factory.mktemp("services")
    env = {**os.environ, "DTRUN_SERVICES_DIR": str(state), "VENV": str(Path(sys.executable).parent.parent)}
    subprocess.run([str(REPO_ROOT / "scripts" / "start-moto"), str(port)], check=True, env=env, cwd=REPO_ROOT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        pid_file = state / f"moto-{port}" / "pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)


@pytest.fixture
def s3_dtrun(dtrun: DtrunRunner, moto: str) -> Iterator[DtrunRunner]:
    import fsspec

    bucket = f"dtrun-test-{SESSION}".lower()
    aws = {"AWS_ENDPOINT_URL": moto, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    fs = fsspec.filesystem("s3", endpoint_url=moto, key="test", secret="test")
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    url = f"s3://{bucket}/team-{os.urandom(4).hex()}"
    runner = DtrunRunner(env={**dtrun.env, **aws, "DTRUN_STORE": url}, store=dtrun.store)
    runner.s3_url = url  # type: ignore[attr-defined]
    runner.fs = fs  # type: ignore[attr-defined]
    try:
        yield runner
    finally:
        import hashlib

        remove_labelled("dev.dtrun.store", hashlib.sha256(url.encode()).hexdigest()[:12])


def test_chain_over_a_tag_with_the_store_on_s3(make_project: Any, s3_dtrun: Any, tmp_path: Path) -> None:
    project = make_project(workflows(download(), TRAIN_ON_TAG))
    downloaded = s3_dtrun("run", "download", "-t", "data", cwd=project)
    assert downloaded.code == 0, downloaded.output
    trained = s3_dtrun("run", "train", cwd=project)
    assert trained.code == 0, trained.output
    assert trained.stdout.strip().startswith("hello")

    # Everything is in the bucket, namespaced by repository; nothing went to a local folder.
    prefix = s3_dtrun.s3_url.removeprefix("s3://")
    names = s3_dtrun.fs.find(prefix)
    assert any(n.endswith("/tags/data.json") for n in names)
    assert any("/artifacts/" in n and n.endswith(".tar") for n in names)
    assert not s3_dtrun.store.exists()

    listing = s3_dtrun("artifacts", "data", cwd=project)
    assert "output/hello.txt" in listing.stdout, listing.output
    got = s3_dtrun("artifacts", run_name(trained), "-o", str(tmp_path / "dl"), cwd=project)
    assert got.code == 0, got.output
    assert (tmp_path / "dl" / "model" / "m").read_text() == "m\n"
    tags = s3_dtrun("tags", cwd=project)
    assert tags.stdout.splitlines()[1].split()[:3] == ["data", run_name(downloaded), "download"]


def test_a_wrong_endpoint_is_a_clear_error(make_project: Any, s3_dtrun: Any) -> None:
    project = make_project(workflows(download()))
    result = s3_dtrun("tags", cwd=project, env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                                                "AWS_MAX_ATTEMPTS": "1"})
    assert result.code != 0
    assert "Traceback" not in result.output, result.output[-2000:]
    assert f"the store {s3_dtrun.s3_url}: the endpoint cannot be reached" in result.stderr
    assert "AWS_ENDPOINT_URL" in result.stderr


def test_an_exclusive_write_has_one_winner_on_s3(s3_dtrun: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`Store.create_once` is S3's conditional write (`If-None-Match: *`): of processes racing to claim
    a job (two `dtrun status` reconciling one agent job), exactly one gets True, whatever the timing."""
    import threading

    from dtrun.store import Store

    for name, value in s3_dtrun.env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    stores = [Store(s3_dtrun.s3_url, "github.com/a/b") for _ in range(4)]
    path = stores[0].job_path("j1", "claim-x")
    barrier = threading.Barrier(len(stores))
    won: list[bool] = []

    def claim(store: Store, token: bytes) -> None:
        barrier.wait()
        won.append(store.create_once(path, token))

    threads = [threading.Thread(target=claim, args=(s, f"t{i}".encode())) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(won) == [False, False, False, True]
    assert stores[0].read_bytes(path) in {b"t0", b"t1", b"t2", b"t3"}
    assert stores[1].create_once(path, b"late") is False
