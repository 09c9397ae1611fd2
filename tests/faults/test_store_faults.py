"""Store faults caused for real: a full disk, a read-only one, a missing bucket, refused and missing
credentials, an endpoint that does not answer, damaged records. Each is one clear error naming the
store and the fix (or, for a damaged record, one warning and the rest still listed), never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dtrun.store.failures import StoreUnavailable
from dtrun.store.records import JobRecord, RunRecord
from dtrun.store.store import Store
from tests.conftest import SESSION, DtrunRunner
from tests.faults.reliability import Row
from tests.integration.test_store_s3 import REPO_ROOT, free_port, moto  # noqa: F401  (fixture)


@contextlib.contextmanager
def tmpfs(where: Path, size: str = "256k", *options: str) -> Iterator[Path]:
    """A small tmpfs of our own (root in the test sandbox); unmounted whatever happens."""
    where.mkdir(parents=True, exist_ok=True)
    opts = ",".join((f"size={size}", *options))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.fault("store folder on a full 256 KiB tmpfs",
                   "a 512 KiB write fails naming the store and `no space left`; no temporary file left; "
                   "the earlier record intact; the same write succeeds once space is freed")
def test_a_full_disk_is_a_clear_error_and_leaves_no_half_written_record(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small") as small:
        store = Store(str(small / "store"), "local/p")
        store.save_run(RunRecord(name="before", repo="local/p", workflow="w"))
        with pytest.raises(StoreUnavailable) as error:
            store.write_bytes(store.job_path("j1", "artifacts", "big.tar"), b"x" * 512 * 1024)
        assert "no space left on the device" in error.value.message
        assert str(small / "store") in error.value.message and "dtrun volumes prune" in str(error.value.hint)
        leftovers = [p.name for p in small.rglob("*") if ".tmp-" in p.name]
        assert leftovers == []
        # What was written before is intact, and space freed lets the same write succeed.
        assert store.load_run("before").workflow == "w"
        store.delete(store.run_path("before"))
        store.write_bytes(store.job_path("j1", "artifacts", "ok.tar"), b"x" * 1024)
        assert store.size(store.job_path("j1", "artifacts", "ok.tar")) == 1024


@pytest.mark.fault("store folder on a read-only tmpfs",
                   "the up-front probe fails with `the store's file system is read-only`")
def test_a_read_only_store_fails_the_up_front_check(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "64k", "ro") as readonly:
        store = Store(str(readonly), "local/p")
        with pytest.raises(StoreUnavailable) as error:
            store.check()
        assert error.value.message == f"cannot write to the store {readonly}: the store's file system is read-only"


@pytest.mark.fault("truncated, foreign and binary records in the store",
                   "listings keep the 2 good runs and the good job; one warning per damaged record, once")
def test_damaged_records_are_skipped_with_one_warning_each(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"), "local/p")
    for name in ("good-1", "good-2"):
        store.save_run(RunRecord(name=name, repo="local/p", workflow="w", jobs=[f"{name}-job"]))
        store.save_job(JobRecord(id=f"{name}-job", run=name, workflow="w", provider="bash"))
    store.write_bytes(store.run_path("truncated"), b'{"name": "trunc')
    store.write_bytes(store.run_path("not-a-run"), b'{"hello": 1}')
    store.write_bytes(store.job_path("good-2-job", "job.json"), b"\x00\x01garbage")
    assert sorted(r.name for r in store.runs()) == ["good-1", "good-2"]
    assert [j.id for j in store.load_jobs(["good-1-job", "good-2-job"])] == ["good-1-job"]
    assert len(store.skipped) == 3
    assert all("is damaged" in m for m in store.skipped)
    list(store.runs())
    assert len(store.skipped) == 3, "a record is warned about once"


@pytest.mark.fault("a truncated run record beside a real run",
                   "`dtrun status` exits 0, shows the real run, one `is damaged` warning naming the file, no traceback")
def test_status_and_logs_skip_damaged_records(make_project: Any, dtrun: DtrunRunner, fault_row: Row) -> None:
    project = make_project({".dtrun/workflows.yaml": """
        workflows:
          - name: hello
            provider: bash
            commands: [echo hello]
        """})
    first = dtrun("run", "hello", "--no-cache", cwd=project)
    assert first.code == 0, first.output
    runs = next(dtrun.store.rglob("runs"))
    (runs / "zz-truncated.json").write_text('{"name": "zz-trunc')
    status = dtrun("status", cwd=project)
    fault_row.runs = 1
    assert status.code == 0, status.output
    assert "Traceback" not in status.output
    assert "hello" in status.stdout
    assert status.stderr.count("is damaged") == 1, status.stderr
    assert "zz-truncated.json" in status.stderr


# -- S3 ------------------------------------------------------------------------------------------------


def s3_env(endpoint: str, **extra: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1", **extra}


@contextlib.contextmanager
def environ(values: dict[str, str], drop: tuple[str, ...] = ()) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    for name in drop:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def s3_store(url: str) -> Store:
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    return Store(url, "github.com/o/p")


@pytest.mark.fault("S3 bucket that does not exist (moto)",
                   "the probe names the bucket and `aws s3 mb`")
def test_a_missing_bucket_is_named(moto: str) -> None:  # noqa: F811
    bucket = f"dtrun-missing-{SESSION}".lower()
    with environ(s3_env(moto)):
        store = s3_store(f"s3://{bucket}/team")
        with pytest.raises(StoreUnavailable) as error:
            store.check()
    assert error.value.message == f"cannot write to the store s3://{bucket}/team: the bucket '{bucket}' does not exist"
    assert f"aws s3 mb s3://{bucket}" in str(error.value.hint)


@pytest.mark.fault("no AWS credentials at all",
                   "`no AWS credentials were found`, the hint names AWS_ACCESS_KEY_ID")
def test_missing_credentials_are_named(moto: str, tmp_path: Path) -> None:  # noqa: F811
    bucket = f"dtrun-creds-{SESSION}".lower()
    none = str(tmp_path / "none")
    with environ({"AWS_ENDPOINT_URL": moto, "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_CONFIG_FILE": none,
                  "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"},
                 drop=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")):
        store = s3_store(f"s3://{bucket}/team")
        with pytest.raises(StoreUnavailable) as error:
            store.check()
    assert "no AWS credentials were found" in error.value.message
    assert "AWS_ACCESS_KEY_ID" in str(error.value.hint)


@pytest.mark.fault("wrong AWS keys (moto checking keys)",
                   "`the AWS credentials were refused`")
def test_refused_credentials_are_named(tmp_path: Path) -> None:
    """A moto server that checks keys (INITIAL_NO_AUTH_ACTION_COUNT=0) refuses the made-up ones."""
    port = free_port()
    env = {**os.environ, "DTRUN_SERVICES_DIR": str(tmp_path), "INITIAL_NO_AUTH_ACTION_COUNT": "0",
           "VENV": str(Path(sys.executable).parent.parent)}
    subprocess.run([str(REPO_ROOT / "scripts" / "start-moto"), str(port)], check=True, env=env, cwd=REPO_ROOT)
    try:
        with environ(s3_env(f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="AKIAWRONGWRONGWRONG1")):
            store = s3_store("s3://some-bucket/team")
            with pytest.raises(StoreUnavailable) as error:
                store.check()
    finally:
        pid = tmp_path / f"moto-{port}" / "pid"
        with contextlib.suppress(ProcessLookupError, ValueError, FileNotFoundError):
            os.kill(int(pid.read_text()), signal.SIGTERM)
    assert error.value.message == "cannot write to the store s3://some-bucket/team: the AWS credentials were refused"


@pytest.mark.fault("S3 endpoint with nothing listening",
                   "`the endpoint cannot be reached`, the hint names AWS_ENDPOINT_URL")
def test_an_unreachable_endpoint_is_named() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    with environ(s3_env(endpoint)):
        store = s3_store("s3://any-bucket/team")
        with pytest.raises(StoreUnavailable) as error:
            store.check()
    assert error.value.message == "cannot write to the store s3://any-bucket/team: the endpoint cannot be reached"
    assert "AWS_ENDPOINT_URL" in str(error.value.hint)


@pytest.mark.fault("`dtrun run` with DTRUN_STORE in a missing bucket",
                   "non-zero exit before any job, the bucket named, no traceback, no job output")
def test_a_missing_bucket_stops_dtrun_before_any_job(make_project: Any, dtrun: DtrunRunner,
                                                     moto: str) -> None:  # noqa: F811
    project = make_project({".dtrun/workflows.yaml": """
        workflows:
          - name: hello
            provider: bash
            commands: [echo hello]
        """})
    bucket = f"team-bucket-{SESSION}".lower()
    result = dtrun("run", "hello", cwd=project, env={**s3_env(moto), "DTRUN_STORE": f"s3://{bucket}/dtrun"})
    assert result.code != 0
    assert "Traceback" not in result.output, result.output[-3000:]
    assert f"the bucket '{bucket}' does not exist" in result.stderr
    assert "hello" not in result.stdout
