"""Action references as DataTorch resolves them, and credentials that never show."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dtrun.config import Settings
from dtrun.errors import SpecError
from dtrun.flows.actions import ActionError, fetch_git, parse_ref, resolve, safe_url
from dtrun.flows.loader import relabel
from dtrun.flows.models import ActionObject
from dtrun.spec.errors import SpecErrors


def test_datatorch_shorthand_and_github_default(tmp_path: Path) -> None:
    plain = Settings(store="x")
    assert parse_ref("datatorch/image-classifier@v1", base_dir=tmp_path, settings=plain).git == \
        "https://github.com/datatorch-actions/image-classifier"
    assert parse_ref("me/act@v2", base_dir=tmp_path, settings=plain).git == "https://github.com/me/act"
    local = Settings(store="x", actions_git_base="file:///srv/git/")
    ref = parse_ref("datatorch/x@v1", base_dir=tmp_path, settings=local)
    assert (ref.git, ref.tag) == ("file:///srv/git/datatorch-actions/x", "v1")
    obj = parse_ref(ActionObject(name="datatorch/x", file="other.yaml"), base_dir=tmp_path, settings=local)
    assert (obj.git, obj.tag, obj.file) == ("file:///srv/git/datatorch-actions/x", "latest", "other.yaml")


def test_credentials_are_masked() -> None:
    assert safe_url("https://user:pa55@host/o/r") == "https://***@host/o/r"
    assert safe_url("fatal: https://ghp_x@github.com/o/r gone") == "fatal: https://***@github.com/o/r gone"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_clone_keeps_no_credentials_and_honours_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path / "data"))
    repo = tmp_path / "o" / "r"
    repo.mkdir(parents=True)
    (repo / "custom.yaml").write_text("name: custom\nruns:\n  using: cmd\n  command: ls\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "one")
    git(repo, "tag", "v1")
    action = resolve(parse_ref(ActionObject(name="o/r", tag="v1", git=repo.as_uri(), file="custom.yaml"),
                               base_dir=tmp_path, settings=Settings(store="x")))
    assert action.manifest is not None and action.manifest.name == "custom"
    assert action.folder is not None and not (action.folder / ".git").exists()
    assert resolve(parse_ref(ActionObject(name="o/r", git=repo.as_uri(), file="custom.yaml"), base_dir=tmp_path,
                             settings=Settings(store="x"))).manifest is not None  # tag `latest`: the default branch
    with pytest.raises(ActionError) as info:
        fetch_git("https://bob:hunter2@127.0.0.1:9/o/r", "v1")
    assert "hunter2" not in str(info.value) and "bob" not in str(info.value)


def test_relabel_keeps_every_error_of_a_spec_errors() -> None:
    many = SpecErrors([SpecError("a"), SpecError("b", hint="h")])
    out = relabel(many, "job 'x', step y")
    assert isinstance(out, SpecErrors)
    assert [e.message for e in out.errors] == ["job 'x', step y: a", "job 'x', step y: b"]
    assert str(relabel(ActionError("gone"), "step s")) == "step s: gone"
