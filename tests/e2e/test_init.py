"""`dtrun init` as a newcomer uses it: the starter file validates, runs, and is never overwritten."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import DtrunRunner, git


def test_init_writes_a_starter_that_validates_and_runs(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    root = make_project({"README.md": "# mine\n"})
    result = dtrun("init", cwd=root)
    assert result.code == 0, result.output
    assert "wrote" in result.stdout and "dtrun run hello" in result.stdout

    text = (root / ".dtrun" / "workflows.yaml").read_text()
    assert text.splitlines()[0] == "# yaml-language-server: $schema=./workflows.schema.json"
    schema = json.loads((root / ".dtrun" / "workflows.schema.json").read_text())
    assert schema == json.loads(dtrun("schema", cwd=root).stdout)  # the same schema `dtrun schema` prints

    listed = dtrun("list", cwd=root)
    assert listed.code == 0, listed.output
    rows = {line.split()[0]: line.split()[1] for line in listed.stdout.splitlines()[1:] if line.strip()}
    assert rows == {"hello": "bash", "lab": "lab"}
    assert dtrun("validate", cwd=root).stdout.startswith("ok: 2 workflows")

    run = dtrun("run", "hello", cwd=root)
    assert run.code == 0, run.output
    assert "Hello from dtrun" in run.stdout
    assert "saved artifact output: 1 files" in run.output


def test_init_refuses_to_overwrite(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    mine = "workflows:\n  - name: mine\n    provider: bash\n    commands: [true]\n"
    root = make_project({".dtrun/workflows.yaml": mine})
    result = dtrun("init", cwd=root)
    assert result.code == 2
    assert ("error: this project already has workflows (.dtrun/workflows.yaml); "
            "dtrun init does not overwrite them") in result.stderr
    assert "Traceback" not in result.output
    assert (root / ".dtrun" / "workflows.yaml").read_text() == mine
    assert not (root / ".dtrun" / "workflows.schema.json").exists()


def test_init_refuses_when_dstack_workflows_exist(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    root = make_project({".dstack/workflows/train.yaml": "workflows: []\n"})
    result = dtrun("init", cwd=root)
    assert result.code == 2
    assert "already has workflows (.dstack/workflows/train.yaml)" in result.stderr
    assert not (root / ".dtrun").exists()


def test_init_keeps_an_existing_schema_file(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    root = make_project({".dtrun/workflows.schema.json": "{}\n"})
    assert dtrun("init", cwd=root).code == 0
    assert (root / ".dtrun" / "workflows.schema.json").read_text() == "{}\n"
    assert (root / ".dtrun" / "workflows.yaml").is_file()


def test_init_outside_a_git_repository(dtrun: DtrunRunner, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    result = dtrun("init", cwd=folder)
    assert result.code == 2
    assert f"error: {folder} is not inside a git repository" in result.stderr
    assert "run `git init` first, then `dtrun init`" in result.stderr
    assert not (folder / ".dtrun").exists()


def test_init_in_a_subfolder_makes_it_the_project(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    root = make_project({"svc/app.py": "print(1)\n"})
    assert dtrun("init", cwd=root / "svc").code == 0
    assert (root / "svc" / ".dtrun" / "workflows.yaml").is_file()
    assert "svc" in git(root, "status", "--porcelain")
