from __future__ import annotations

from pathlib import Path

import pytest

from dtrun.errors import ProjectError
from dtrun.spec.project import find_project


def test_found_from_a_subfolder(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".dstack").mkdir()
    (tmp_path / "src" / "deep").mkdir(parents=True)
    project = find_project(tmp_path / "src" / "deep")
    assert project.root == tmp_path.resolve() and project.git_root == tmp_path.resolve()


def test_nearest_project_in_a_monorepo(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "a" / ".dtrun").mkdir(parents=True)
    assert find_project(tmp_path / "a").root == (tmp_path / "a").resolve()


def test_outside_git(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="not inside a git repository"):
        find_project(tmp_path)


def test_no_workflow_folder(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    with pytest.raises(ProjectError, match="no workflows found") as info:
        find_project(tmp_path)
    assert info.value.hint and ".dtrun/workflows.yaml" in info.value.hint
