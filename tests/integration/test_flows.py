"""Flows end to end: real containers on the shared daemon, through `dtrun flow run` as a user types it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import BUSYBOX_IMAGE, DtrunRunner, git, job_volumes, write_files


def runs_in(store: Path) -> list[Path]:
    return list(store.glob("repos/*/*/*/runs/*.json")) + list(store.glob("repos/*/*/runs/*.json"))


def test_needs_outputs_workspace_and_parallel_jobs(tmp_path: Path, dtrun: DtrunRunner) -> None:
    write_files(tmp_path, {
        "flow.yaml": f"""
            name: pipeline
            env:
              GREETING: hello
            jobs:
              prepare:
                name: Prepare data
                image: {BUSYBOX_IMAGE}
                outputs:
                  rows: ${{{{ steps.make.outputs.rows }}}}
                steps:
                  - id: make
                    run: |
                      mkdir -p data && seq 1 5 > data/rows.txt
                      export LEAK=yes
                      echo "rows=$(wc -l < data/rows.txt | tr -d ' ')" >> "$DTRUN_OUTPUT"
                      echo '::label::"from stdout"'
                  - id: look
                    run: |
                      echo "sees $(cat data/rows.txt | tr '\\n' ' ')and LEAK=${{LEAK:-unset}} $GREETING"
                      echo "label=${{{{ steps.make.outputs.label }}}}"
              other:
                image: {BUSYBOX_IMAGE}
                steps:
                  - run: echo independent; cat notes/hello.txt
              train:
                needs: [prepare, other]
                image: {BUSYBOX_IMAGE}
                steps:
                  - name: fit
                    action: dtrun/shell
                    inputs:
                      run: echo "training on $ROWS rows"
                    env:
                      ROWS: ${{{{ jobs.prepare.outputs.rows }}}}
            """,
        "notes/hello.txt": "code from the repository\n",
    })
    git(tmp_path, "init", "-q")  # the repository's files are in every job's workspace
    summary = tmp_path / "summary.json"
    result = dtrun("flow", "run", str(tmp_path / "flow.yaml"), "--json-file", str(summary))
    assert result.code == 0, result.output
    out = result.stdout
    assert "[prepare/look] sees 1 2 3 4 5 and LEAK=unset hello" in out  # shared workspace, fresh process
    assert "[prepare/look] label=from stdout" in out  # a ::key:: line became an output
    assert "[train/fit] training on 5 rows" in out
    assert "[other/1] independent" in out and "[other/1] code from the repository" in out
    assert out.index("[prepare/make]") < out.index("[train/fit]")
    assert out.index("[other/1]") < out.index("[train/fit]")
    assert "\x1b[" not in result.output  # no terminal: no colours
    data = json.loads(summary.read_text())
    assert data["outcome"] == "success"
    assert data["jobs"]["prepare"]["outputs"] == {"rows": "5"}
    assert data["jobs"]["prepare"]["steps"][0]["outputs"] == {"rows": "5", "label": "from stdout"}
    assert [s["outcome"] for s in data["jobs"]["train"]["steps"]] == ["success"]
    assert len(runs_in(dtrun.store)) == 1


def test_failing_step_stops_job_and_fails_the_command(tmp_path: Path, dtrun: DtrunRunner) -> None:
    write_files(tmp_path, {
        "flow.yml": f"""
            name: broken
            jobs:
              build:
                image: {BUSYBOX_IMAGE}
                steps:
                  - run: echo before
                  - id: boom
                    run: echo failing; exit 3
                  - run: echo never
                  - name: cleanup
                    if: ${{{{ failure() }}}}
                    run: echo cleaning up
              deploy:
                needs: build
                image: {BUSYBOX_IMAGE}
                steps:
                  - run: echo deploying
            """,
    })
    result = dtrun("flow", "run", str(tmp_path / "flow.yml"), "--json")
    assert result.code == 1, result.output
    assert "[build/boom] failing" in result.stderr  # with --json, stdout is the JSON alone
    assert "never" not in result.output and "deploying" not in result.output
    assert "[build/cleanup] cleaning up" in result.stderr
    assert "[build/boom] failed: exited with code 3" in result.stderr
    assert "[deploy] not run: build did not succeed" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["outcome"] == "failure"
    assert [s["outcome"] for s in summary["jobs"]["build"]["steps"]] == ["success", "failure", "skipped", "success"]
    assert summary["jobs"]["build"]["steps"][1]["exit_code"] == 3
    assert summary["jobs"]["deploy"]["outcome"] == "skipped"


def test_input_errors_are_reported_before_any_container_starts(tmp_path: Path, dtrun: DtrunRunner) -> None:
    write_files(tmp_path, {
        "actions/count/action-datatorch.yaml": f"""
            name: count
            inputs:
              times: {{type: integer, required: true}}
              ratio: {{type: float, default: 0.5}}
            runs:
              using: shell
              image: {BUSYBOX_IMAGE}
              command: echo ${{{{ inputs.times }}}}
            """,
        "flow.yaml": f"""
            name: typed
            jobs:
              first:
                image: {BUSYBOX_IMAGE}
                steps:
                  - run: echo SHOULD-NOT-RUN
              second:
                steps:
                  - action: ./actions/count
                    inputs:
                      times: many
            """,
    })
    result = dtrun("flow", "run", str(tmp_path / "flow.yaml"))
    assert result.code == 2, result.output
    assert f"{tmp_path / 'flow.yaml'}:11:18:" in result.stderr
    assert "input 'times' must be an integer, got 'many'" in result.stderr
    assert "Traceback" not in result.output
    assert "SHOULD-NOT-RUN" not in result.output and runs_in(dtrun.store) == []

    (tmp_path / "flow.yaml").write_text((tmp_path / "flow.yaml").read_text().replace("times: many", "tims: 3"))
    result = dtrun("flow", "run", str(tmp_path / "flow.yaml"))
    assert result.code == 2
    assert "has no input 'tims'" in result.stderr and "did you mean 'times'" in result.stderr


def test_inputs_reach_the_action_as_environment_never_as_shell(tmp_path: Path, dtrun: DtrunRunner) -> None:
    write_files(tmp_path, {
        "actions/echo/action-datatorch.yaml": f"""
            name: echo
            inputs:
              text: {{type: string, required: true}}
              batch-size: {{type: integer, default: 8}}
              tags: {{type: array, default: [a, b]}}
              dry-run: {{type: boolean, default: false}}
            outputs:
              said: {{description: what it said}}
            runs:
              using: shell
              image: {BUSYBOX_IMAGE}
              command: |
                echo "text=${{{{ inputs.text }}}}"
                echo "env: $INPUT_BATCH_SIZE $INPUT_TAGS $INPUT_DRY_RUN"
                echo "said=${{{{ inputs.text }}}}" >> "$DTRUN_OUTPUT"
            """,
        "flow.json": json.dumps({
            "name": "json-flow",
            "jobs": {"only": {"image": BUSYBOX_IMAGE, "steps": [
                {"id": "e", "action": "./actions/echo",
                 "inputs": {"text": "$(echo pwned); `id` \"quoted\"", "dry-run": True}},
                {"run": "echo \"next got ${{ steps.e.outputs.said }}\""},
            ]}},
        }),
    })
    git(tmp_path, "init", "-q")
    result = dtrun("flow", "run", str(tmp_path / "flow.json"))
    assert result.code == 0, result.output
    assert '[only/e] text=$(echo pwned); `id` "quoted"' in result.stdout
    assert '[only/e] env: 8 ["a", "b"] true' in result.stdout
    assert '[only/2] next got $(echo pwned); `id` "quoted"' in result.stdout


def test_flow_file_extension_and_missing_manifest(tmp_path: Path, dtrun: DtrunRunner) -> None:
    write_files(tmp_path, {"flow.toml": "name = 'x'\n", "noaction/README": "nothing here\n",
                           "flow.yaml": "name: f\njobs:\n  a:\n    steps:\n      - action: ./noaction\n"})
    result = dtrun("flow", "run", str(tmp_path / "flow.toml"))
    assert result.code == 2 and "must have a .yml, .yaml or .json extension" in result.stderr
    result = dtrun("flow", "run", str(tmp_path / "flow.yaml"))
    assert result.code == 2 and "has no action-datatorch.yaml" in result.stderr
    assert f"{tmp_path / 'flow.yaml'}:5:" in result.stderr


def test_timeout_and_gpu_requests(tmp_path: Path, dtrun: DtrunRunner) -> None:
    write_files(tmp_path, {
        "slow.yaml": f"""
            name: slow
            jobs:
              wait:
                timeout: 1s
                image: {BUSYBOX_IMAGE}
                steps:
                  - run: echo started; sleep 30
                  - run: echo after
            """,
        "gpu.yaml": f"""
            name: gpu
            jobs:
              cpu:
                image: {BUSYBOX_IMAGE}
                steps:
                  - run: echo SHOULD-NOT-RUN
              train:
                resources:
                  gpu: 1
                image: {BUSYBOX_IMAGE}
                steps:
                  - run: nvidia-smi
            """,
    })
    result = dtrun("flow", "run", str(tmp_path / "slow.yaml"))
    assert result.code == 1, result.output
    assert "[wait/1] started" in result.stdout and "after" not in result.stdout
    assert "[wait/1] failed: job timed out; the step was killed" in result.stderr

    result = dtrun("flow", "run", str(tmp_path / "gpu.yaml"))
    if "nvidia" in result.stdout:  # a GPU host: the step ran
        assert result.code == 0
        return
    assert result.code == 2, result.output
    assert "asks for 1 GPU" in result.stderr and "NVIDIA runtime" in result.stderr
    assert "SHOULD-NOT-RUN" not in result.output


def test_ctrl_c_stops_the_running_steps(tmp_path: Path, dtrun: DtrunRunner, docker_client: Any) -> None:
    write_files(tmp_path, {"flow.yaml": f"""
        name: long
        jobs:
          a:
            image: {BUSYBOX_IMAGE}
            steps:
              - run: echo waiting; sleep 60
          b:
            needs: a
            image: {BUSYBOX_IMAGE}
            steps:
              - run: echo SHOULD-NOT-RUN
        """})
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", "flow", "run", str(tmp_path / "flow.yaml")],
                            env=dtrun.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == "[a/1] waiting\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "SHOULD-NOT-RUN" not in out
    selector = {"label": f"dev.dtrun.store={dtrun.store_label}"}
    assert docker_client.containers.list(all=True, filters=selector) == []
    assert job_volumes(docker_client, dtrun.store_label) == []
