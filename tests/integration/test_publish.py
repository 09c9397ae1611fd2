"""An action author publishes to a real registry on loopback; a flow then runs it by image reference."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SESSION, DtrunRunner, write_files

ROOT = Path(__file__).resolve().parents[2]
PORT = int(os.environ.get("DTRUN_TEST_REGISTRY_PORT", "5063"))


@pytest.fixture(scope="module")
def registry() -> str:
    proc = subprocess.run([str(ROOT / "scripts" / "start-registry"), str(PORT)], capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"scripts/start-registry {PORT} failed: {proc.stderr}")
    return f"127.0.0.1:{PORT}"


def test_publish_then_use_by_image_reference(tmp_path: Path, dtrun: DtrunRunner, docker_client: Any,
                                             registry: str) -> None:
    write_files(tmp_path, {
        "act/action-datatorch.yaml": """
            name: scale
            inputs:
              factor: {type: float, required: true}
            outputs:
              scaled: {}
            runs:
              using: shell
              command: |
                echo "scaling by ${{ inputs.factor }}"
                echo "scaled=$(echo "$INPUT_FACTOR * 2" | bc 2>/dev/null || echo "$INPUT_FACTOR x2")" >> "$DTRUN_OUTPUT"
            """,
    })
    ref = f"{registry}/dtrun-test-{SESSION}/scale:v1"
    result = dtrun("action", "publish", ref, str(tmp_path / "act"), "--username", "ci", input="not-checked\n")
    assert result.code == 0, result.output
    assert result.stdout.strip() == f"docker://{ref}"
    with_tag = docker_client.images.get(ref)
    tags = [t for t in with_tag.tags if t == ref or t.startswith("dtrun-action/scale:")]
    for tag in tags:  # the next pull must really come from the registry
        docker_client.images.remove(tag)
    with pytest.raises(Exception):  # noqa: B017 - docker.errors.ImageNotFound
        docker_client.images.get(ref)

    write_files(tmp_path, {
        "flow.yaml": f"""
            name: published
            jobs:
              use:
                steps:
                  - id: s
                    action: docker://{ref}
                    inputs: {{factor: 1.5}}
            """,
        "bad.yaml": f"""
            name: published
            jobs:
              use:
                steps:
                  - action: docker://{ref}
                    inputs: {{factor: lots}}
            """,
    })
    summary = tmp_path / "s.json"
    try:
        result = dtrun("flow", "run", str(tmp_path / "flow.yaml"), "--json-file", str(summary))
        assert result.code == 0, result.output
        assert "[use/s] scaling by 1.5" in result.stdout
        assert json.loads(summary.read_text())["jobs"]["use"]["steps"][0]["outputs"]["scaled"]
        assert docker_client.images.get(ref)  # pulled from the registry
        bad = dtrun("flow", "run", str(tmp_path / "bad.yaml"))
        assert bad.code == 2 and "input 'factor' must be a float, got 'lots'" in bad.stderr
    finally:
        with contextlib.suppress(Exception):
            docker_client.images.remove(ref)


def test_publish_needs_a_registry_and_a_password(tmp_path: Path, dtrun: DtrunRunner) -> None:
    write_files(tmp_path, {"act/action-datatorch.yaml": "name: a\nruns: {using: shell, command: 'true'}\n"})
    result = dtrun("action", "publish", "justaname", str(tmp_path / "act"))
    assert result.code == 2 and "names no registry" in result.stderr
    result = dtrun("action", "publish", "127.0.0.1:1/a:b", str(tmp_path / "act"), "--username", "u", input="")
    assert result.code == 2 and "needs a password on stdin" in result.stderr
