"""Loading fixture projects and writing small throwaway ones for spec tests (no git, no Docker)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dtrun.errors import DtrunError
from dtrun.spec import Project, Spec, load_spec

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "spec"


def fixture(name: str) -> Project:
    root = FIXTURES / name
    return Project(git_root=root, root=root)


def load_fixture(name: str) -> Spec:
    return load_spec(fixture(name))


def project(tmp_path: Path, files: dict[str, str]) -> Project:
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip("\n"))
    return Project(git_root=tmp_path, root=tmp_path)


def errors_of(proj: Project) -> list[str]:
    """Every error `load_spec` reports, as the user sees it (positions relative to the project)."""
    with pytest.raises(DtrunError) as info:
        load_spec(proj)
    errors = getattr(info.value, "errors", None) or [info.value]
    return [str(e).replace(f"{proj.root}/", "") for e in errors]
