"""Flow jobs on real containers: a deterministic job reused from the job cache (no container started, seen
in Docker's events), and the values of an action's declared `env` taken from the host masked."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.conftest import BUSYBOX_IMAGE, SESSION, DtrunRunner, write_files


def created_containers(client: Any, since: float, run: str) -> list[str]:
    """Names of the containers of run `run` that Docker created since `since` (its event log)."""
    events = client.events(since=int(since), until=int(time.time()) + 1, decode=True,
                           filters={"type": "container", "event": "create", "label": f"dev.dtrun.run={run}"})
    return [e["Actor"]["Attributes"]["name"] for e in events]


def run_name(summary: dict[str, Any]) -> str:
    return str(summary["run"])


def printed(stderr: str) -> list[str]:
    """prep's output lines as the terminal showed them (its steps' status lines left out)."""
    return [line.strip() for line in stderr.splitlines() if SESSION in line and line.strip().startswith("[prep")]


def test_a_deterministic_flow_job_is_cached(tmp_path: Path, dtrun: DtrunRunner, docker_client: Any) -> None:
    write_files(tmp_path, {
        "actions/square/action-datatorch.yaml": f"""
            name: square
            cache: true
            inputs:
              n: {{type: integer, required: true}}
            outputs:
              square: {{type: integer}}
            runs:
              using: shell
              image: {BUSYBOX_IMAGE}
              command: echo "squaring $INPUT_N" && echo "square=$((INPUT_N * INPUT_N))" >> "$DTRUN_OUTPUT"
            """,
        "flow.yaml": f"""
            name: cached
            jobs:
              prep:
                cache: true
                image: {BUSYBOX_IMAGE}
                outputs: {{n: "${{{{ steps.count.outputs.n }}}}"}}
                steps:
                  - id: count
                    run: echo "counting {SESSION}" && echo "::n::6"
                  - id: tell
                    run: printf 'told {SESSION} one\\ntold {SESSION} two\\n'
              calc:
                needs: prep
                outputs: {{square: "${{{{ steps.sq.outputs.square }}}}"}}
                steps:
                  - id: sq
                    action: ./actions/square
                    inputs: {{n: "${{{{ jobs.prep.outputs.n }}}}"}}
              report:
                needs: calc
                image: {BUSYBOX_IMAGE}
                steps:
                  - run: echo "square is ${{{{ jobs.calc.outputs.square }}}}"
            """,
    })
    flow = str(tmp_path / "flow.yaml")
    first = dtrun("flow", "run", flow, "--json")
    assert first.code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["jobs"]["calc"]["outputs"] == {"square": 36}
    assert "[report/1] square is 36" in first.stderr

    since = time.time() - 1
    again = dtrun("flow", "run", flow, "--json")
    assert again.code == 0, again.output
    summary = json.loads(again.stdout)
    # prep (cache: true) and calc (every step an action with `cache: true`) are reused; report is not
    assert "CACHED prep" in again.stderr and "CACHED calc" in again.stderr
    # the first run's output, replayed as it was shown: each line under the step that printed it
    assert printed(again.stderr) == printed(first.stderr) == [
        f"[prep/count] counting {SESSION}", f"[prep/tell] told {SESSION} one", f"[prep/tell] told {SESSION} two"]
    assert "[report/1] square is 36" in again.stderr
    assert summary["jobs"]["prep"]["outputs"] == {"n": 6} and summary["jobs"]["calc"]["outputs"] == {"square": 36}
    assert [s["outcome"] for s in summary["jobs"]["calc"]["steps"]] == ["success"]
    created = created_containers(docker_client, since, run_name(summary))
    assert len(created) == 1 and "-report-" in created[0], created

    forced = dtrun("flow", "run", flow, "--no-cache", "--json")
    assert forced.code == 0, forced.output
    assert "CACHED" not in forced.stderr and "reused from the cache" not in forced.stderr
    assert len(created_containers(docker_client, since, run_name(json.loads(forced.stdout)))) == 4  # prep: 2 steps

    # the flow changed (another input for prep's step): prep runs again
    text = (tmp_path / "flow.yaml").read_text().replace("::n::6", "::n::7")
    (tmp_path / "flow.yaml").write_text(text)
    changed = dtrun("flow", "run", flow, "--json")
    assert changed.code == 0, changed.output
    assert "CACHED prep" not in changed.stderr and json.loads(changed.stdout)["jobs"]["calc"]["outputs"] == {
        "square": 49}


def test_declared_env_from_the_host_is_masked(tmp_path: Path, dtrun: DtrunRunner) -> None:
    token = f"host-token-{SESSION}"
    write_files(tmp_path, {
        "actions/use/action-datatorch.yaml": f"""
            name: use
            env:
              API_TOKEN: the service's token
            outputs:
              echoed: {{}}
            runs:
              using: shell
              image: {BUSYBOX_IMAGE}
              command: echo "token is $API_TOKEN" && echo "echoed=$API_TOKEN" >> "$DTRUN_OUTPUT"
            """,
        "flow.yaml": """
            name: masked
            jobs:
              j:
                steps:
                  - id: use
                    action: ./actions/use
            """,
    })
    result = dtrun("flow", "run", str(tmp_path / "flow.yaml"), "--json", env={"API_TOKEN": token})
    assert result.code == 0, result.output
    assert "[j/use] token is ***" in result.stderr
    assert json.loads(result.stdout)["jobs"]["j"]["steps"][0]["outputs"] == {"echoed": "***"}
    assert token not in result.output
    for path in dtrun.store.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
