"""The client SIGKILLed while its job builds, runs or uploads, for a workflow and for a flow.

Nothing catches SIGKILL: the process is gone between two instructions. The next command that reads
state (`dtrun status`) must settle every job of the run from what the store and the daemon hold: a job
that was running or uploading is finished from its container (outputs saved); a job whose build was
cut short fails, saying so. Afterwards no container or volume of the run is left on the daemon.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BUSYBOX_IMAGE, HOST_CACHES, SESSION, DtrunRunner, write_files
from tests.faults.reliability import Row

#: One workflow per phase to be killed in: its job sits in that phase long enough to be caught there.
WORKFLOWS = f"""
workflows:
  - name: building
    provider: bash
    python_install: system
    requirements: requirements.txt
    commands: [echo built]
  - name: running
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands:
      - mkdir -p out
      - echo started
      - sleep 4
      - echo finished > out/result.txt
      - echo finished
    artifacts: [out]
  - name: uploading
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands:
      - mkdir -p out
      - head -c 600000000 /dev/zero > out/big.bin
      - echo written
    artifacts: [out]
"""

FLOW = f"""
name: killed
jobs:
  work:
    image: {BUSYBOX_IMAGE}
    steps:
      - id: first
        run: mkdir -p out && echo one > out/one.txt && echo first-done
      - id: second
        run: sleep 4 && echo two > out/two.txt && echo second-done
"""


def job_files(store: Path) -> list[Path]:
    return list(store.rglob("jobs/*/job.json"))


def states(store: Path) -> list[str]:
    out = []
    for path in job_files(store):
        try:
            out.append(json.loads(path.read_text())["state"])
        except (ValueError, KeyError, OSError):
            continue
    return out


def wait_until(check: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the job to reach the phase")
        time.sleep(0.05)


def leftovers(docker_client: Any, dtrun: DtrunRunner) -> list[str]:
    selector = {"label": f"dev.dtrun.store={dtrun.store_label}"}
    return ([f"container {c.name}" for c in docker_client.containers.list(all=True, filters=selector)]
            + [f"volume {v.name}" for v in docker_client.volumes.list(filters=selector)
               if not v.name.startswith(HOST_CACHES)])


def kill_in(phase: str, command: list[str], cwd: Path, dtrun: DtrunRunner,
            reached: Callable[[], bool] | None = None) -> None:
    """Start `dtrun COMMAND` and SIGKILL it once a job is in `phase` (and `reached()` holds, if given)."""
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", *command], cwd=cwd, env=dtrun.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (phase in states(dtrun.store) and (reached is None or reached()))
                   or proc.poll() is not None)
        assert proc.poll() is None, f"the client ended before its job reached {phase}"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def settle(dtrun: DtrunRunner, cwd: Path, timeout: float = 120) -> list[dict[str, Any]]:
    """`dtrun status` until every job of the run is finished (a running job finishes on its own)."""
    deadline = time.monotonic() + timeout
    while True:
        result = dtrun("status", "--json", "--last", "1", cwd=cwd)
        assert result.code == 0 and "Traceback" not in result.output, result.output
        runs = json.loads(result.stdout)
        jobs = [j for r in runs for j in r["jobs"]]
        if jobs and all(j["state"] in ("DONE", "FAILED", "STOPPED", "ABORTED", "CACHED") for j in jobs):
            return runs  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, runs
        time.sleep(0.5)


@pytest.mark.fault("client SIGKILLed while its workflow's image builds",
                   "the next `dtrun status` settles the job as FAILED (its build was cut short); "
                   "nothing left on the daemon")
def test_killed_while_building(make_project: Any, dtrun: DtrunRunner, docker_client: Any,
                               fault_row: Row) -> None:
    # A requirement line unique to this session: a real build, never an image from an earlier run.
    project = make_project({".dtrun/workflows.yaml": WORKFLOWS,
                            "requirements.txt": f"six  # dtrun fault suite {SESSION} {time.time_ns()}\n"})
    kill_in("BUILDING", ["run", "building"], project, dtrun)
    runs = settle(dtrun, project)
    fault_row.runs = 1
    job = runs[0]["jobs"][0]
    assert job["state"] == "FAILED", job
    assert "the build of its image was cut short" in (job["message"] or ""), job
    assert leftovers(docker_client, dtrun) == []


@pytest.mark.fault("client SIGKILLed while its workflow's job runs",
                   "the job finishes on its own; `dtrun status` saves its artifact and log; nothing left")
def test_killed_while_running(make_project: Any, dtrun: DtrunRunner, docker_client: Any, fault_row: Row) -> None:
    project = make_project({".dtrun/workflows.yaml": WORKFLOWS})
    kill_in("RUNNING", ["run", "running", "--no-cache"], project, dtrun)
    job = settle(dtrun, project)[0]["jobs"][0]
    fault_row.runs = 1
    assert job["state"] == "DONE", job
    assert [a["path"] for a in job["artifacts"]] == ["out"]
    fault_row.artifacts_saved = len(job["artifacts"])
    assert dtrun("logs", job["id"], cwd=project).stdout == "started\nfinished\n"
    assert leftovers(docker_client, dtrun) == []


@pytest.mark.fault("client SIGKILLed while it uploads a 600 MB artifact",
                   "`dtrun status` exports the artifact again from the kept container; the job is DONE; nothing left")
def test_killed_while_uploading(make_project: Any, dtrun: DtrunRunner, docker_client: Any,
                                fault_row: Row, tmp_path: Path) -> None:
    project = make_project({".dtrun/workflows.yaml": WORKFLOWS})
    kill_in("UPLOADING", ["run", "uploading", "--no-cache"], project, dtrun)
    job = settle(dtrun, project)[0]["jobs"][0]
    fault_row.runs = 1
    assert job["state"] == "DONE", job
    assert [(a["path"], a["size"]) for a in job["artifacts"]] == [("out", 600000000)]
    fault_row.artifacts_saved = 1
    # No half-written object: every stored tar has its manifest and the store holds no temporary file.
    assert not [p for p in dtrun.store.rglob("*") if ".tmp-" in p.name]
    assert leftovers(docker_client, dtrun) == []


@pytest.mark.fault("client SIGKILLed while a flow's job runs its second (last) step",
                   "flows have no upload phase (no artifacts): what a flow job saves at its end is its log "
                   "and record, which `dtrun status` settles from the last step's container (DONE, the "
                   "output of both steps in the log); nothing left")
def test_killed_flow_is_settled(tmp_path: Path, dtrun: DtrunRunner, docker_client: Any, fault_row: Row) -> None:
    write_files(tmp_path, {"flow.yaml": FLOW})
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    # The job is RUNNING from its first step on; the kill waits for the second step's container (the
    # last one: `steps-left` 0), as this case is about, so that the reconcile can finish the job from it.
    def second_step_runs() -> bool:
        selector = {"label": [f"dev.dtrun.store={dtrun.store_label}", "dev.dtrun.steps-left=0"]}
        return bool(docker_client.containers.list(filters=selector))

    kill_in("RUNNING", ["flow", "run", "flow.yaml"], tmp_path, dtrun, reached=second_step_runs)
    runs = settle(dtrun, tmp_path)
    fault_row.runs = 1
    job = runs[0]["jobs"][0]
    assert job["state"] == "DONE", job
    logs = dtrun("logs", runs[0]["name"], cwd=tmp_path).stdout
    assert "first-done" in logs and "second-done" in logs, logs
    assert leftovers(docker_client, dtrun) == []


def action_files(marker: str) -> dict[str, str]:
    """A flow whose one step uses a local Dockerfile action; `marker` makes its image new (a real build)."""
    return {
        "actions/slow/action-datatorch.yaml": "name: slow\nruns:\n  using: docker\n  dockerfile: Dockerfile\n",
        "actions/slow/Dockerfile": f"FROM {BUSYBOX_IMAGE}\nRUN echo '{marker}' > /marker && sleep 6\n"
                                   'ENTRYPOINT ["sh", "-c", "cat /marker; echo built=yes >> $DTRUN_OUTPUT"]\n',
        "flow.yaml": "name: killed-build\njobs:\n  work:\n    steps:\n      - id: a\n        action: ./actions/slow\n",
    }


@pytest.mark.fault("client SIGKILLed while a flow's action image builds",
                   "a flow builds every image before its run is recorded, so no job is left unsettled: "
                   "`dtrun status` lists no run, nothing is left on the daemon, and the next `flow run` builds "
                   "and runs the flow")
def test_killed_flow_while_building(tmp_path: Path, dtrun: DtrunRunner, docker_client: Any,
                                    fault_row: Row) -> None:
    marker = f"dtrun fault suite {SESSION} {time.time_ns()}"
    write_files(tmp_path, action_files(marker))
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    before = {i.id for i in docker_client.images.list(name="dtrun-action/slow")}
    try:
        check_flow_killed_while_building(tmp_path, dtrun, docker_client, marker)
    finally:  # this session's action image (unique by its marker) goes
        for image in docker_client.images.list(name="dtrun-action/slow"):
            if image.id not in before:
                docker_client.images.remove(image.id, force=True)
    fault_row.runs = 1


def check_flow_killed_while_building(tmp_path: Path, dtrun: DtrunRunner, docker_client: Any, marker: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", "flow", "run", "flow.yaml"], cwd=tmp_path,
                            env=dtrun.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        seen = b""
        for line in proc.stderr:  # the client says which image it builds, then the build runs >= 6 s
            seen += line
            if b"building dtrun-action/slow" in line:
                break
        else:
            raise AssertionError(f"the client ended before it built the action's image: {seen!r}")
        time.sleep(1.5)
        assert proc.poll() is None, "the build ended before the kill"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    result = dtrun("status", "--json", "--last", "1", cwd=tmp_path)
    assert result.code == 0 and "Traceback" not in result.output, result.output
    assert [j for r in json.loads(result.stdout) for j in r["jobs"]] == []
    assert leftovers(docker_client, dtrun) == []
    again = dtrun("flow", "run", "flow.yaml", "--json", cwd=tmp_path)
    assert again.code == 0, again.output
    assert json.loads(again.stdout)["jobs"]["work"]["steps"][0]["outputs"] == {"built": "yes"}
    assert marker in dtrun("logs", json.loads(again.stdout)["run"], cwd=tmp_path).stdout
    runs = settle(dtrun, tmp_path)
    assert [j["state"] for r in runs for j in r["jobs"]] == ["DONE"]
    assert leftovers(docker_client, dtrun) == []
    # nor a build container of the cut-short build (a classic builder's carry no labels: found by the marker)
    assert [c.name for c in docker_client.containers.list(all=True)
            if marker in " ".join(c.attrs.get("Config", {}).get("Cmd") or [])] == []
