"""A hostile secret: it reaches the job as a variable, runs nothing, and is in no command, label, layer,
record or log.

The secret `abc"; touch /workspace/pwned; echo "` once ended the string it was pasted into and ran the
`touch` (issue 15). Here it is used in a shell command, in exec-form arguments of an entrypoint, in a
flow's `run:` step and in an action's input (which a shell action also gets as an argument). While the
jobs run, a watcher inspects every container of the test's store: `Config.Cmd`, `Config.Entrypoint` and
labels must not hold the value (`Config.Env` does: that is how it is passed). Each job prints the
SHA-256 of what it received (its output is masked, so the value itself would show as `***`).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BUSYBOX_IMAGE, SESSION, DtrunRunner
from tests.faults.reliability import Row

SECRET = f'abc"; touch /workspace/pwned; echo "{SESSION}'
TOKEN = f"tok{SESSION}"
CHECK = 'if [ -e /workspace/pwned ]; then echo PWNED; exit 3; fi; echo "no-pwned-file"'

WORKFLOWS = f"""
workflows:
  - name: shell
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands:
      - echo "token=${{{{ secrets.TOKEN }}}}"
      - printf '%s' "token=${{{{ secrets.TOKEN }}}}" | sha256sum
      - printf '%s' '${{{{ secrets.TOKEN }}}}' | sha256sum
      - sleep 2
      - '{CHECK}'
  - name: exec
    provider: docker
    image: {BUSYBOX_IMAGE}
    entrypoint: ["sh", "-c", 'printf "%s" "$1" | sha256sum; sleep 2; {CHECK}', "x", "--t=${{{{ secrets.TOKEN }}}}"]
"""

ACTION = """
name: show
inputs:
  token: {type: string, required: true}
runs:
  using: shell
  image: BUSY
  command: printf '%s' "$1" | sha256sum; printf '%s' "${{ inputs.token }}" | sha256sum; sleep 2
  args: ["${{ inputs.token }}"]
""".replace("BUSY", BUSYBOX_IMAGE)

FLOW = f"""
name: leak
jobs:
  j:
    image: {BUSYBOX_IMAGE}
    steps:
      - id: say
        run: |
          echo "token=${{{{ secrets.TOKEN }}}}"
          printf '%s' "token=${{{{ secrets.TOKEN }}}}" | sha256sum
          sleep 2
          {CHECK}
      - id: act
        action: ./actions/show
        inputs:
          token: ${{{{ secrets.TOKEN }}}}
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@contextmanager
def watch(docker_client: Any, label: str) -> Iterator[dict[str, dict[str, Any]]]:
    """Every container of the store `label`, inspected while it exists (they are removed when done)."""
    seen: dict[str, dict[str, Any]] = {}
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            for c in docker_client.api.containers(all=True, filters={"label": f"dev.dtrun.store={label}"}):
                if c["Id"] not in seen:
                    try:
                        seen[c["Id"]] = docker_client.api.inspect_container(c["Id"])
                    except Exception:  # removed between the listing and the inspect
                        continue
            stop.wait(0.1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(5)


def exposed(inspect: dict[str, Any]) -> str:
    """What of a container is visible to anyone who can inspect it, except its environment."""
    config = inspect["Config"]
    return json.dumps([config.get("Cmd"), config.get("Entrypoint"), config.get("Labels"), inspect.get("Args"),
                       inspect.get("Path"), inspect.get("Name")])


@pytest.mark.fault("a secret that closes its quote and runs `touch` (`abc\"; touch /workspace/pwned; echo \"`)",
                   "in a workflow's commands, exec-form entrypoint arguments, a flow's run: step and an action "
                   "input: the job gets the exact value (its SHA-256), nothing runs, and the value is in no "
                   "container's Cmd/Entrypoint/labels, no image history, no store file, no terminal output")
def test_a_hostile_secret_is_passed_only_as_a_variable(dtrun: DtrunRunner, make_project: Callable[..., Path],
                                                       docker_client: Any, fault_row: Row) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS, "flow.yaml": FLOW,
                         "actions/show/action-datatorch.yaml": ACTION})
    assert dtrun("secrets", "add", "TOKEN", cwd=root, input=SECRET).code == 0
    outputs: list[str] = []
    with watch(docker_client, dtrun.store_label) as seen:
        for workflow in ("shell", "exec"):
            result = dtrun("run", workflow, cwd=root)
            assert result.code == 0, result.output
            outputs.append(result.output)
        flow = dtrun("flow", "run", str(root / "flow.yaml"), cwd=root, env={"DTRUN_SECRET_TOKEN": SECRET})
        assert flow.code == 0, flow.output
        outputs.append(flow.output)
    shell, exec_form, flowed = outputs
    assert "token=***" in shell and "no-pwned-file" in shell and "PWNED" not in shell
    assert sha(f"token={SECRET}") in shell and sha(SECRET) in shell
    assert sha(f"--t={SECRET}") in exec_form and "no-pwned-file" in exec_form
    assert "[j/say] token=***" in flowed and sha(f"token={SECRET}") in flowed and "no-pwned-file" in flowed
    assert flowed.count(sha(SECRET)) == 2  # the action's argument and its input variable
    assert not any(SECRET in text or "abc\"; touch" in text for text in outputs)

    assert len(seen) >= 4, "the watcher saw every job's container"
    for inspect in seen.values():
        assert SECRET not in exposed(inspect) and "touch /workspace/pwned" not in exposed(inspect), exposed(inspect)
    images = {inspect["Config"]["Image"] for inspect in seen.values()}
    for image in images:
        history = subprocess.run(["docker", "history", "--no-trunc", image], capture_output=True, text=True)
        assert history.returncode == 0 and SECRET not in history.stdout and "pwned" not in history.stdout
    stored = [p for p in dtrun.store.rglob("*") if p.is_file()]
    assert any(p.name == "logs.txt" for p in stored)
    for path in stored:
        data = path.read_bytes()
        assert SECRET.encode() not in data and b"touch /workspace/pwned" not in data, path
    fault_row.runs = 3
