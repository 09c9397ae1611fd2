"""`dtrun run` end to end against the real Docker daemon: the foundation's vertical slice."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DtrunRunner, write_files

WORKFLOWS = """
workflows:
  - name: hello
    provider: bash
    env:
      - GREETING=hi there
    commands:
      - echo "hello from $DTRUN_WORKFLOW"
      - echo "$GREETING"
  - name: fail
    provider: bash
    commands:
      - echo before
      - exit 3
      - echo never
  - name: write
    provider: bash
    commands:
      - mkdir -p output/nested
      - echo "hello artifact" > output/hello.txt
      - cp untracked.txt output/copied.txt
      - test ! -e ignored.txt
    artifacts: [output]
  - name: read
    provider: bash
    depends-on: [write]
    commands:
      - cat output/hello.txt
  - name: slow
    provider: bash
    commands:
      - echo first
      - sleep 4
      - echo second
  - name: forever
    provider: bash
    commands:
      - trap 'echo got SIGTERM; exit 0' TERM
      - echo started
      - while true; do sleep 0.2; done
  - name: ca
    provider: bash
    commands:
      - cat "$SSL_CERT_FILE"
      - test "$PIP_CERT" = "$SSL_CERT_FILE" && test "$REQUESTS_CA_BUNDLE" = "$SSL_CERT_FILE"
      - if echo tampered >> "$SSL_CERT_FILE"; then echo WRITABLE; fi
  - name: gpu
    provider: bash
    resources:
      gpu: 1
    commands:
      - nvidia-smi
"""


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS, ".gitignore": "ignored.txt\n"})
    (root / "untracked.txt").write_text("not committed\n")
    (root / "ignored.txt").write_text("ignored by git\n")
    return root


def job_records(store: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in store.glob("repos/**/jobs/*/job.json")]


def run_records(store: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in store.glob("repos/**/runs/*.json")]


def test_passing_workflow_streams_output_and_records_the_run(dtrun: DtrunRunner, project: Path,
                                                             docker_client: Any) -> None:
    result = dtrun("run", "hello", cwd=project / ".dtrun")  # any folder inside the repository
    assert result.code == 0, result.output
    assert result.stdout == "hello from hello\nhi there\n"
    [run] = run_records(dtrun.store)
    assert run["workflow"] == "hello" and run["state"] == "DONE" and run["exit_code"] == 0
    assert run["branch"] == "main" and len(run["commit"]) == 40 and run["dirty"] is True  # untracked.txt
    assert len(run["name"].split("-")) == 3 and run["name"].endswith("-1")
    [job] = job_records(dtrun.store)
    assert [t["state"] for t in job["history"]] == ["SUBMITTED", "BUILDING", "RUNNING", "UPLOADING", "DONE"]
    assert job["image"].startswith("dtrun/bash:")
    logs = next(dtrun.store.glob("repos/**/jobs/*/logs.txt")).read_text()
    assert "hi there" in logs
    # the command returned once the job's container and its workspace (a view and its two companions) were gone
    mine = {"label": f"dev.dtrun.job={job['id']}"}
    assert docker_client.containers.list(all=True, filters=mine) == []
    assert [v.name for v in docker_client.volumes.list(filters={"name": f"dtrun-ws-{job['id']}"})] == []


def test_failing_workflow_propagates_its_exit_code(dtrun: DtrunRunner, project: Path) -> None:
    result = dtrun("run", "fail", cwd=project)
    assert result.code == 3
    assert "before" in result.stdout and "never" not in result.stdout
    assert "exited with code 3" in result.stderr
    [run] = run_records(dtrun.store)
    assert run["state"] == "FAILED" and run["exit_code"] == 3


def test_artifacts_and_untracked_files(dtrun: DtrunRunner, project: Path) -> None:
    result = dtrun("run", "read", cwd=project)
    assert result.code == 0, result.output
    assert result.stdout.strip() == "hello artifact"  # read saw write's output, mounted read-only
    tars = list(dtrun.store.glob("repos/**/jobs/*/artifacts/*.tar"))
    manifests = list(dtrun.store.glob("repos/**/jobs/*/artifacts/*.json"))
    assert len(tars) == 1 and len(manifests) == 1
    with tarfile.open(tars[0]) as tar:
        assert sorted(tar.getnames()) == ["copied.txt", "hello.txt", "nested"]
        assert tar.extractfile("copied.txt").read() == b"not committed\n"  # type: ignore[union-attr]
        assert tar.getmember("nested").isdir()
    manifest = json.loads(manifests[0].read_text())
    assert manifest["artifact"]["path"] == "output" and manifest["artifact"]["files"] == 2


def test_image_is_rebuilt_only_when_the_spec_or_templates_change(
        dtrun: DtrunRunner, project: Path, tmp_path: Path, docker_client: Any) -> None:
    # Requirements unique to this test, so its image is not one that other runs already built.
    unique = uuid.uuid4().hex
    write_files(project, {"requirements.txt": f"# {unique}\n"})
    built: list[str] = []

    def run(**env: str) -> str:
        result = dtrun("run", "hello", cwd=project, env=env)
        assert result.code == 0, result.output
        built.extend(re.findall(r"building (dtrun/bash:\w+)", result.stderr))
        return result.stderr

    try:
        assert "building dtrun/bash:" in run()
        assert "building" not in run()
        write_files(project, {"requirements.txt": f"# {unique} changed\n"})
        assert "building dtrun/bash:" in run()
        templates = tmp_path / "templates"
        shutil.copytree(Path(__file__).parents[2] / "images", templates)
        with (templates / "layers" / "labels.j2").open("a") as fh:
            fh.write('LABEL dev.dtrun.test-template="changed"\n')
        assert "building dtrun/bash:" in run(DTRUN_IMAGES_DIR=str(templates))
        assert len(set(built)) == 3
    finally:
        for tag in set(built):
            docker_client.images.remove(tag, force=True)


def test_logs_stream_while_the_job_runs(dtrun: DtrunRunner, project: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", "run", "slow"], cwd=project, env=dtrun.env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "first\n"
    assert proc.poll() is None  # the job is still running when its first line arrives
    assert proc.stdout.readline() == "second\n"
    assert proc.wait(timeout=60) == 0


def test_ctrl_c_stops_the_container(dtrun: DtrunRunner, project: Path, docker_client: Any) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", "run", "forever"], cwd=project, env=dtrun.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "started\n"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "got SIGTERM" in out  # the job was stopped gracefully, and saw it
    assert "STOPPED" in err
    selector = {"label": f"dev.dtrun.store={dtrun.store_label}"}
    assert docker_client.containers.list(all=True, filters=selector) == []
    [run] = run_records(dtrun.store)
    assert run["state"] == "STOPPED"


def test_ca_bundle_reaches_the_job_read_only(dtrun: DtrunRunner, project: Path, tmp_path: Path,
                                            docker_client: Any) -> None:
    marker = f"# test CA bundle {uuid.uuid4().hex}"
    bundle = tmp_path / "bundle.crt"
    bundle.write_text(marker + "\n")
    result = dtrun("run", "ca", cwd=project, env={"DTRUN_CA_BUNDLE": str(bundle)})
    try:
        assert result.code == 0, result.output
        assert marker in result.stdout and "WRITABLE" not in result.stdout
        again = dtrun("run", "ca", "--no-cache", cwd=project, env={"DTRUN_CA_BUNDLE": str(bundle)})
        assert again.code == 0 and marker in again.stdout  # the same volume, copied once per daemon
    finally:  # only this test's bundle volume: others' jobs may be using theirs
        own = f"dtrun-ca-{hashlib.sha256(bundle.read_bytes()).hexdigest()[:24]}"
        for volume in docker_client.volumes.list(filters={"name": own}):
            volume.remove(force=True)


def assert_clear_error(result: Any, *needles: str) -> None:
    assert result.code != 0
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_missing_workflow(dtrun: DtrunRunner, project: Path) -> None:
    assert_clear_error(dtrun("run", "helo", cwd=project), "no workflow named 'helo'", "did you mean 'hello'?")


def test_yaml_syntax_error_names_the_line(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    root = make_project({".dstack/workflows.yaml": "workflows:\n  - name: a\n    provider: bash\n"
                                                   "    commands: [echo\n"})
    result = dtrun("run", "a", cwd=root)
    assert_clear_error(result, "YAML syntax error")
    assert f"{root / '.dstack' / 'workflows.yaml'}:5" in result.stderr


def test_outside_a_git_repository(dtrun: DtrunRunner, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    (folder / ".dtrun").mkdir(parents=True)
    assert_clear_error(dtrun("run", "x", cwd=folder), "not inside a git repository", "hint:")


def test_an_image_reference_the_daemon_cannot_parse_is_a_clear_error(
        dtrun: DtrunRunner, project: Path, make_project: Callable[..., Path]) -> None:
    """Docker answers 400 "invalid reference format": a clear error saying where the reference is set."""
    result = dtrun("run", "hello", cwd=project, env={"DTRUN_BASE_IMAGE": "not a valid ref!"})
    assert_clear_error(result, "the base image 'not a valid ref!' is not a valid image reference",
                       "invalid reference format", "hint: fix DTRUN_BASE_IMAGE")
    named = make_project({".dtrun/workflows.yaml": "workflows:\n  - name: a\n    provider: docker\n"
                                                  "    image: Site/Tool:1\n    commands: [echo]\n"})
    assert_clear_error(dtrun("run", "a", cwd=named), "the image 'Site/Tool:1' is not a valid image reference",
                       "hint: fix the workflow's `image:`")
    doctor = dtrun("doctor", cwd=project, env={"DTRUN_BASE_IMAGE": "not a valid ref!"})
    assert "Traceback" not in doctor.output
    assert "FAIL  base image  'not a valid ref!' (base_image setting) is not a valid image reference" in doctor.stdout


def test_gpu_request_without_a_gpu_runtime(dtrun: DtrunRunner, project: Path, docker_client: Any) -> None:
    if "nvidia" in (docker_client.info().get("Runtimes") or {}):
        pytest.skip("this Docker host has the NVIDIA runtime: the refusal cannot be shown here")
    started = time.monotonic()
    result = dtrun("run", "gpu", cwd=project)
    assert_clear_error(result, "asks for 1 GPU", "no NVIDIA runtime", "NVIDIA Container Toolkit")
    assert time.monotonic() - started < 30  # refused before building or starting anything
    assert not list(dtrun.store.glob("repos/**/runs/*.json"))
    assert docker_client.containers.list(all=True, filters={"label": f"dev.dtrun.store={dtrun.store_label}"}) \
        == []


def test_runs_with_the_dstack_folder_name_too(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    root = make_project({".dstack/workflows.yaml": "workflows:\n  - name: t\n    provider: bash\n"
                                                   "    commands: [echo dstack]\n"})
    result = dtrun("run", "t", cwd=root)
    assert result.code == 0 and result.stdout == "dstack\n", result.output


@pytest.fixture(autouse=True)
def _no_host_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DTRUN_HOST", raising=False)
    os.environ.pop("DTRUN_IMAGES_DIR", None)
