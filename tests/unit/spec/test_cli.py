"""`dtrun list`, `dtrun validate`, `dtrun schema` and `dtrun run [WORKFLOW] --help`, as a user types them.

None of these needs Docker: they read the workflow files only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import DtrunRunner
from tests.unit.spec.helpers import FIXTURES

FILES = {
    ".dstack/workflows.yaml": """
        workflows:
          - name: download-model
            help: Downloads the GPT-2 model
            provider: bash
            commands: [echo $MODEL]
          - name: finetune-model
            provider: python
            file: train.py
            depends-on: [download-model]
        """,
    ".dstack/variables.yaml": """
        variables:
          download-model:
            model: 124M
            models_dir: model
        """,
    "src/deep/file.txt": "x\n",
}


def test_list_from_a_subfolder(make_project: Callable[..., Path], dtrun: DtrunRunner) -> None:
    root = make_project(FILES)
    result = dtrun("list", cwd=root / "src" / "deep")
    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["WORKFLOW", "PROVIDER", "DEPENDS", "ON", "HELP"]
    assert lines[1].split() == ["download-model", "bash", "Downloads", "the", "GPT-2", "model"]
    assert lines[2].split() == ["finetune-model", "python", "download-model"]


def test_validate_ok_and_all_errors_at_once(make_project: Callable[..., Path], dtrun: DtrunRunner) -> None:
    root = make_project(FILES)
    ok = dtrun("validate", cwd=root)
    assert (ok.code, ok.stdout.strip()) == (0, "ok: 2 workflows in .dstack/workflows.yaml, .dstack/variables.yaml")
    (root / ".dtrun").mkdir()
    (root / ".dtrun" / "workflows.yaml").write_text(
        "workflows:\n  - name: a\n    provider: bsh\n  - name: b\n    provider: bash\n    comands: [x]\n")
    bad = dtrun("validate", cwd=root)
    assert bad.code == 1
    assert "Traceback" not in bad.output
    assert bad.stderr.splitlines() == [
        ".dtrun/workflows.yaml:3:15: error: unknown provider 'bsh'".replace(".dtrun", f"{root}/.dtrun"),
        "  hint: did you mean 'bash'? providers: bash, python, docker, torchrun, lab, notebook, code",
        f"{root}/.dtrun/workflows.yaml:4:5: error: provider 'bash' needs 'commands'",
        "  hint: add `commands:` with the shell commands to run",
        f"{root}/.dtrun/workflows.yaml:6:5: error: unknown property 'comands'",
        "  hint: did you mean 'commands'? valid properties for bash: artifacts, before_run, cache, commands, cuda, "
        "depends-on, deps, env, environment, help, name, ports, provider, python, python_install, requirements, "
        "resources, secrets, ssh, version, working_dir",
        "3 errors",
    ]


def test_run_with_a_broken_spec_fails_without_a_traceback(make_project: Callable[..., Path],
                                                          dtrun: DtrunRunner) -> None:
    root = make_project({".dtrun/workflows.yaml": "workflows:\n  - name: a\n    provider: bash\n"
                                                  "    commands:\n      - echo ${{ nope }}\n"})
    result = dtrun("run", "a", cwd=root)
    assert result.code == 2
    assert "Traceback" not in result.output
    assert f"error: {root}/.dtrun/workflows.yaml:5:14: unknown variable 'nope' in ${{{{ nope }}}}" in result.stderr
    (root / ".dtrun" / "workflows.yaml").write_text("workflows:\n  - name: a\n    provider: bash\n"
                                                    "    commands: [echo ${{ nope }}]\n")
    flow = dtrun("run", "a", cwd=root)
    assert (flow.code, flow.stderr.splitlines()) == (2, [
        f"error: {root}/.dtrun/workflows.yaml:4:22: YAML syntax error: expected ',' or ']', but got '{{'",
        '  hint: inside [ ] or { }, a value with ${{ ... }} must be quoted: ["echo ${{ name }}"]'])


def test_run_help_lists_the_workflows(make_project: Callable[..., Path], dtrun: DtrunRunner) -> None:
    result = dtrun("run", "--help", cwd=make_project(FILES))
    assert result.code == 0, result.output
    workflows = result.stdout.split("workflows:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in workflows] == ["download-model", "finetune-model"]
    assert "Downloads the GPT-2 model" in workflows[0]
    assert "run finetune-model workflow" in workflows[1]


def test_run_workflow_help_lists_its_variables(make_project: Callable[..., Path], dtrun: DtrunRunner) -> None:
    result = dtrun("run", "download-model", "--help", cwd=make_project(FILES))
    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "usage: dtrun run download-model [--model [MODEL]] [--models_dir [MODELS_DIR]] [ARGS...]"
    assert "  --model        [MODEL]        default is 124M" in lines
    assert "  --models_dir   [MODELS_DIR]   default is model" in lines
    # A run of finetune-model also runs download-model: its variables are accepted too.
    dependent = dtrun("run", "finetune-model", "--help", cwd=make_project(FILES))
    assert "  --model        [MODEL]        default is 124M" in dependent.stdout.splitlines()


def test_top_level_help_lists_the_commands(dtrun: DtrunRunner, tmp_path: Path) -> None:
    result = dtrun("--help", cwd=tmp_path)
    assert result.code == 0
    for command in ("list", "validate", "schema", "run"):
        assert f" {command} " in result.stdout


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    from dtrun.spec.schema import workflows_schema

    return workflows_schema()


def test_schema_command_prints_the_schema(dtrun: DtrunRunner, tmp_path: Path, schema: dict[str, Any]) -> None:
    result = dtrun("schema", cwd=tmp_path)
    assert result.code == 0
    assert json.loads(result.stdout) == json.loads(json.dumps(schema))
    variables = dtrun("schema", "variables", cwd=tmp_path)
    assert json.loads(variables.stdout)["properties"]["variables"]["type"] == "object"
    wrong = dtrun("schema", "flows", cwd=tmp_path)
    assert (wrong.code, wrong.stderr.splitlines()[0]) == (2, "error: no schema named 'flows'")


@pytest.mark.parametrize("path", sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/.d*/workflows.yaml")))
def test_schema_accepts_every_valid_fixture(schema: dict[str, Any], path: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft7Validator.check_schema(schema)
    data = yaml.safe_load((FIXTURES / path).read_text())
    assert [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(data)] == []


@pytest.mark.parametrize(("workflow", "message"), [
    ({"name": "a", "provider": "bsh", "commands": ["x"]}, "'bsh' is not one of"),
    ({"name": "a", "provider": "python"}, "'file' is a required property"),
    ({"name": "a", "provider": "python", "environment": {"A": 1}}, "'file' is a required property"),
    ({"name": "a", "provider": "bash", "commands": ["x"], "nodes": 2}, "'nodes' is not one of"),
    ({"name": "a", "provider": "bash", "commands": ["x"], "resources": {"memory": "lots"}}, "does not match"),
    ({"name": "a", "commands": ["x"]}, "is not valid under any of the given schemas"),
])
def test_schema_rejects_what_the_loader_rejects(schema: dict[str, Any], workflow: dict[str, Any],
                                                message: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors({"workflows": [workflow]})]
    errors += [c.message for e in jsonschema.Draft7Validator(schema).iter_errors({"workflows": [workflow]})
               for c in e.context or []]
    assert any(message in e for e in errors), errors
