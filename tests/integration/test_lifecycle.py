"""Watching and managing runs: status, logs, detached runs, a killed client, stop/abort, resume, parallel jobs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import BUSYBOX_IMAGE, DtrunRunner

# A job that checkpoints: it continues from ckpt/step, ends cleanly on SIGTERM, and saves ckpt/ as an artifact.
CKPT = f"""
workflows:
  - name: ckpt
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands:
      - mkdir -p ckpt
      - 'n=$(cat ckpt/step 2>/dev/null || echo 0); echo "start at $n"'
      - trap 'echo "got term at $(cat ckpt/step 2>/dev/null || echo 0)"; exit 0' TERM
      - 'while [ $n -lt $STEPS ]; do n=$((n+1)); echo $n > ckpt/step; echo step $n; sleep 0.3 & wait $!; done'
    env:
      - STEPS
    artifacts:
      - path: ckpt
  - name: after
    provider: docker
    image: {BUSYBOX_IMAGE}
    depends-on: [ckpt]
    commands:
      - cat ckpt/step
"""

STUBBORN = f"""
workflows:
  - name: stubborn
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands:
      - mkdir -p out
      - trap "echo ignoring term" TERM
      - 'while true; do date > out/t; echo tick; sleep 0.3 & wait $! || true; done'
    artifacts:
      - path: out
"""

PARALLEL = f"""
workflows:
  - name: a
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands: ["sleep 1", "echo a"]
  - name: b
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands: ["sleep 1", "echo b"]
  - name: both
    provider: docker
    image: {BUSYBOX_IMAGE}
    depends-on: [a, b]
    commands: ["echo both"]
"""


def runs_json(dtrun: DtrunRunner, cwd: Path, *args: str) -> list[dict[str, Any]]:
    result = dtrun("status", "--json", *args, cwd=cwd)
    assert result.code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def wait_for(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def job_state(dtrun: DtrunRunner, cwd: Path, run: str) -> str:
    found = [r for r in runs_json(dtrun, cwd, "--last", "5") if r["name"] == run]
    return str(found[0]["jobs"][0]["state"]) if found and found[0]["jobs"] else "SUBMITTED"


def stored_files(dtrun: DtrunRunner, job: str) -> list[str]:
    return sorted(p.name for p in dtrun.store.rglob(f"jobs/{job}/artifacts/*") if p.is_file())


def test_status_logs_and_since(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    root = make_project({".dtrun/workflows.yaml": CKPT})
    assert "no runs yet" in dtrun("status", cwd=root).stdout
    first = dtrun("run", "ckpt", cwd=root, env={"STEPS": "2"})
    assert first.code == 0, first.output
    out = dtrun("status", cwd=root)
    header = out.stdout.splitlines()[0].split()
    assert header == ["RUN", "TAG", "JOB", "WORKFLOW", "VARIABLES", "SUBMITTED", "RUNNER", "STATUS"]
    lines = out.stdout.splitlines()
    assert lines[1].split()[1:3] == ["<none>", "ckpt"] and lines[1].split()[-1] == "DONE"
    assert "just now" in lines[1] and "unix://" in lines[1]
    # `ps` is `status`; the SUBMITTED age may tick over between the two calls on a loaded machine
    age = re.compile(r"just now|\d+ \w+ ago")
    assert age.sub("AGE", dtrun("ps", cwd=root).stdout).split() == age.sub("AGE", out.stdout).split()

    run = runs_json(dtrun, root)[0]
    job = run["jobs"][0]
    assert [h["state"] for h in job["history"]] == ["SUBMITTED", "BUILDING", "RUNNING", "UPLOADING", "DONE"]
    logs = dtrun("logs", run["name"], cwd=root)
    assert logs.code == 0 and logs.stdout == "start at 0\nstep 1\nstep 2\n", logs.output
    assert dtrun("logs", job["id"], "-s", "10m", cwd=root).stdout == logs.stdout
    assert dtrun("logs", job["id"][:6], "--since", "2999-01-01T00:00:00Z", cwd=root).stdout == ""
    bad = dtrun("logs", run["name"], "-s", "whenever", cwd=root)
    assert bad.code != 0 and "cannot read --since" in bad.stderr and "Traceback" not in bad.stderr
    missing = dtrun("logs", "no-such-run", cwd=root)
    assert missing.code != 0 and "no run or job named 'no-such-run'" in missing.stderr

    second = dtrun("run", "ckpt", "--no-cache", cwd=root, env={"STEPS": "1"})
    assert second.code == 0, second.output
    assert [r["state"] for r in runs_json(dtrun, root, "--last", "5")] == ["DONE", "DONE"]
    assert len(runs_json(dtrun, root, "--last", "1")) == 1
    assert len(runs_json(dtrun, root)) == 1  # nothing unfinished: the last finished run


def test_killed_client_is_reconciled_by_status(dtrun: DtrunRunner, make_project: Callable[..., Path],
                                               docker_client: Any) -> None:
    root = make_project({".dtrun/workflows.yaml": CKPT})
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", "run", "ckpt"], cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**dtrun.env, "STEPS": "6"})
    selector = {"label": [f"dev.dtrun.store={dtrun.store_label}", "dev.dtrun.workflow=ckpt"]}
    wait_for(lambda: bool(docker_client.containers.list(filters=selector)))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    container = docker_client.containers.list(filters=selector)[0]
    assert container.status == "running"  # the job outlives its client
    container.wait(timeout=30)

    run = runs_json(dtrun, root)[0]
    assert run["state"] == "DONE" and run["jobs"][0]["state"] == "DONE", run
    job = run["jobs"][0]
    assert job["exit_code"] == 0 and [a["path"] for a in job["artifacts"]] == ["ckpt"]
    assert stored_files(dtrun, job["id"])
    assert dtrun("logs", job["id"], cwd=root).stdout.endswith("step 6\n")
    assert not docker_client.containers.list(all=True, filters=selector)  # collected and removed
    assert not docker_client.volumes.list(filters={"label": f"dev.dtrun.job={job['id']}"})


def test_detached_run_stop_saves_outputs_and_resume_continues(dtrun: DtrunRunner,
                                                              make_project: Callable[..., Path]) -> None:
    root = make_project({".dtrun/workflows.yaml": CKPT})
    started = time.monotonic()
    detached = dtrun("run", "ckpt", "-d", cwd=root, env={"STEPS": "40"})
    assert detached.code == 0, detached.output
    assert time.monotonic() - started < 10
    name = detached.stdout.strip()
    wait_for(lambda: job_state(dtrun, root, name) == "RUNNING")
    time.sleep(1.2)
    stop = dtrun("stop", name, cwd=root)
    assert stop.code == 0 and "STOPPED" in stop.stderr, stop.output
    run = runs_json(dtrun, root)[0]
    job = run["jobs"][0]
    assert run["state"] == "STOPPED" and job["state"] == "STOPPED"
    assert [h["state"] for h in job["history"]][-3:] == ["STOPPING", "UPLOADING", "STOPPED"]
    assert [a["path"] for a in job["artifacts"]] == ["ckpt"]
    logs = dtrun("logs", job["id"], cwd=root).stdout
    assert "got term" in logs
    # the checkpoint as the job left it (the TERM may land between its write and the `step N` line)
    reached = int(logs.split("got term at ")[-1].split()[0])
    assert 0 < reached < 40

    resumed = dtrun("resume", job["id"], cwd=root, env={"STEPS": str(reached + 2)})
    assert resumed.code == 0, resumed.output
    assert f"start at {reached}\n" in resumed.stdout and f"step {reached + 2}" in resumed.stdout
    assert "step 1\n" not in resumed.stdout
    after = runs_json(dtrun, root)[0]
    assert after["state"] == "DONE" and after["jobs"][0]["state"] == "DONE"
    full = dtrun("logs", job["id"], cwd=root).stdout
    assert "start at 0" in full and f"start at {reached}" in full  # the log continues the stopped one

    again = dtrun("resume", job["id"], cwd=root)
    assert again.code != 0 and "is DONE; only a stopped job can be resumed" in again.stderr
    assert dtrun("stop", name, cwd=root).code != 0


def test_abort_saves_no_outputs_and_resume_refuses_dependents(dtrun: DtrunRunner,
                                                             make_project: Callable[..., Path]) -> None:
    root = make_project({".dtrun/workflows.yaml": CKPT})
    name = dtrun("run", "after", "-d", cwd=root, env={"STEPS": "40"}).stdout.strip()
    wait_for(lambda: job_state(dtrun, root, name) == "RUNNING")
    abort = dtrun("stop", "-a", name, cwd=root)
    assert abort.code == 0, abort.output
    run = runs_json(dtrun, root)[0]
    ckpt, after = run["jobs"]
    assert run["state"] == "ABORTED" and ckpt["state"] == "ABORTED" and ckpt["artifacts"] == []
    assert after["state"] in ("ABORTED", "STOPPED") and "not run" in (after["message"] or "")
    assert stored_files(dtrun, ckpt["id"]) == []
    refused = dtrun("resume", ckpt["id"], cwd=root)
    assert refused.code != 0 and "is ABORTED" in refused.stderr

    # a stopped job that another job depends on cannot be resumed
    name = dtrun("run", "after", "-d", cwd=root, env={"STEPS": "40"}).stdout.strip()
    wait_for(lambda: job_state(dtrun, root, name) == "RUNNING")
    assert dtrun("stop", name, cwd=root).code == 0
    stopped = runs_json(dtrun, root)[0]["jobs"][0]
    assert stopped["state"] == "STOPPED"
    refused = dtrun("resume", stopped["id"], cwd=root)
    assert refused.code != 0 and "after" in refused.stderr and "depend" in refused.stderr


def test_follow_logs_of_a_detached_run(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    root = make_project({".dtrun/workflows.yaml": CKPT})
    name = dtrun("run", "ckpt", "-d", cwd=root, env={"STEPS": "4"}).stdout.strip()
    followed = dtrun("logs", name, "-f", cwd=root, timeout=60)
    assert followed.code == 0 and followed.stdout.endswith("step 4\n"), followed.output
    wait_for(lambda: job_state(dtrun, root, name) == "DONE")


def test_independent_jobs_run_in_parallel(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    root = make_project({".dtrun/workflows.yaml": PARALLEL})
    result = dtrun("run", "both", cwd=root)
    assert result.code == 0, result.output
    jobs = {j["workflow"]: j for j in runs_json(dtrun, root)[0]["jobs"]}

    def at(job: dict[str, Any], state: str) -> float:
        return float(next(h["at"] for h in job["history"] if h["state"] == state))

    a, b = jobs["a"], jobs["b"]
    assert at(a, "RUNNING") < at(b, "DONE") and at(b, "RUNNING") < at(a, "DONE")  # they overlapped
    assert at(jobs["both"], "RUNNING") > max(at(a, "DONE"), at(b, "DONE"))

    serial = dtrun("run", "both", "--no-cache", cwd=root, env={"DTRUN_MAX_PARALLEL": "1"})
    assert serial.code == 0
    jobs = {j["workflow"]: j for j in runs_json(dtrun, root)[0]["jobs"]}
    first, second = sorted((jobs["a"], jobs["b"]), key=lambda j: at(j, "RUNNING"))
    assert at(second, "RUNNING") >= at(first, "DONE")


def interrupt(dtrun: DtrunRunner, root: Path, workflow: str, times: int, env: dict[str, str]) -> tuple[int, str]:
    """Run in the foreground and press Ctrl+C `times` times once the job runs."""
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", "run", workflow], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**dtrun.env, **env},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout is not None
    output = b""
    while b"tick" not in output and b"step 1" not in output:
        output += proc.stdout.read1(4096)  # type: ignore[attr-defined]
    for _ in range(times):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.8)
    output += proc.stdout.read()
    return proc.wait(timeout=60), output.decode()


def test_ctrl_c_stops_and_a_second_ctrl_c_aborts(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    root = make_project({".dtrun/workflows.yaml": CKPT + STUBBORN.replace("workflows:\n", "")})
    code, output = interrupt(dtrun, root, "ckpt", 1, {"STEPS": "40"})
    assert code == 130 and "stopping (SIGTERM" in output and "STOPPED ckpt" in output, output
    job = runs_json(dtrun, root)[0]["jobs"][0]
    assert [h["state"] for h in job["history"]][-3:] == ["STOPPING", "UPLOADING", "STOPPED"]
    assert [a["path"] for a in job["artifacts"]] == ["ckpt"]

    code, output = interrupt(dtrun, root, "stubborn", 2, {})
    assert code == 130 and "ignoring term" in output and "ABORTED stubborn" in output, output
    run = runs_json(dtrun, root)[0]
    job = run["jobs"][0]
    assert run["state"] == "ABORTED" and job["artifacts"] == []
    assert [h["state"] for h in job["history"]][-3:] == ["STOPPING", "ABORTING", "ABORTED"]
    assert stored_files(dtrun, job["id"]) == []
