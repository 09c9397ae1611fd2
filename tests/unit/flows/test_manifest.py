"""`action-datatorch.yaml` as DataTorch defines it: what loads, what is refused and how the refusal reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtrun.errors import SpecError
from dtrun.flows.loader import load_manifest

PUBLISHED = """\
$schema: https://datatorch.io/schema/action.v1.json
name: Python Add
author: DataTorch
description: Adds two numbers.
cache: true
env:
  API_TOKEN: the token of the service
  REGION:
inputs:
  a:
    type: integer
    required: true
    description: First number
  b:
    type: float
    default: 2.5
  names:
    type: list
    default: [x, y]
  notes:
    type: string
    multiline: true
    deprecationMessage: use `b`
  mode:
    type: string
    default: fast
    options: [fast, slow]
outputs:
  sum:
    type: integer
    description: a + b
  label: the sum as text
runs:
  using: python
  main: add.py
"""


def manifest(tmp_path: Path, text: str, name: str = "action-datatorch.yaml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_a_published_manifest_loads_with_every_property(tmp_path: Path) -> None:
    found, _ = load_manifest(manifest(tmp_path, PUBLISHED), "action")
    assert found.schema_ == "https://datatorch.io/schema/action.v1.json"
    assert found.author == "DataTorch" and found.cache is True
    assert {k: v.description for k, v in found.env.items()} == {"API_TOKEN": "the token of the service",
                                                                "REGION": None}
    assert found.inputs["names"].type == "list" and found.inputs["notes"].multiline
    assert found.inputs["notes"].deprecation_message == "use `b`"
    assert found.outputs["sum"].type == "integer" and found.outputs["label"].description == "the sum as text"


@pytest.mark.parametrize("runs, using", [
    ("using: shell\n  script: run.sh --fast", "shell"),
    ("using: script\n  script: run.sh", "script"),
    ("using: cmd\n  command: echo hi", "cmd"),
    ("using: commandline\n  command: echo hi", "commandline"),
    ("using: docker\n  image: busybox", "docker"),
    ("using: Python\n  main: main.py", "python"),
])
def test_every_runner_kind(tmp_path: Path, runs: str, using: str) -> None:
    found, _ = load_manifest(manifest(tmp_path, f"name: x\nruns:\n  {runs}\n"), "action")
    assert found.runs.using == using


@pytest.mark.parametrize("text, message", [
    ("name: x\nruns:\n  using: node\n  main: index.js\n", "`node` is declared by DataTorch"),
    ("name: x\nruns:\n  using: human\n", "`human` is a task for a person"),
    ("name: x\nruns:\n  using: java\n", "'runs.using': 'java' is not known"),
    ("name: x\nruns:\n  using: script\n", "needs `script`"),
    ("name: x\nruns:\n  using: cmd\n  script: a.sh\n", "needs `command`"),
    ("name: x\nruns:\n  using: script\n  script: a.sh 'open\n", "as a path and arguments: No closing quotation"),
    ("name: x\nenv:\n  TOKEN: {value: abc}\nruns:\n  using: cmd\n  command: ls\n", "never their values"),
    ("name: x\ninputs:\n  a: {type: number}\nruns:\n  using: cmd\n  command: ls\n", "inputs.a.type"),
    ("name: x\noutputs:\n  a: {tpye: integer}\nruns:\n  using: cmd\n  command: ls\n", "did you mean 'type'"),
])
def test_refusals_are_positioned_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        load_manifest(manifest(tmp_path, text), "action")
    assert message in str(info.value)
    assert info.value.position is not None and info.value.position.line > 0


def test_another_manifest_file_is_honoured(tmp_path: Path) -> None:
    manifest(tmp_path, "name: other\nruns:\n  using: cmd\n  command: ls\n", "dt.yaml")
    found, _ = load_manifest(tmp_path, "action", file="dt.yaml")
    assert found.name == "other"
    with pytest.raises(SpecError, match=r"has no missing\.yaml"):
        load_manifest(tmp_path, "action", file="missing.yaml")
    with pytest.raises(SpecError, match="outside the action's folder"):
        load_manifest(tmp_path, "action", file="../x.yaml")


def test_action_show_lists_what_the_manifest_declares(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dtrun.cli.app import app

    result = CliRunner().invoke(app, ["action", "show", str(manifest(tmp_path, PUBLISHED))])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Python Add by DataTorch (runs.using: python, cached)"
    assert "  a (integer; required): First number" in lines
    assert "  notes (string, multiline)" in lines and "    deprecated: use `b`" in lines
    assert "  mode (string; default 'fast'; one of 'fast', 'slow')" in lines
    assert "  sum (integer): a + b" in lines and "  API_TOKEN: the token of the service" in lines


def test_cache_on_a_run_step_is_refused(tmp_path: Path) -> None:
    from dtrun.flows.loader import load_flow

    path = tmp_path / "f.yaml"
    path.write_text("name: f\njobs:\n  a:\n    steps:\n      - run: ls\n        cache: true\n")
    with pytest.raises(SpecError, match="`cache` belongs to an `action` step") as info:
        load_flow(path)
    assert str(info.value).startswith(f"{path}:5:")
