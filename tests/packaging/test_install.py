"""The wheel installed as a user installs it: `dtrun --help`, `validate` and a real `run` work from it.

With no extras, and again with `[s3]` and the store in a bucket (moto's S3 server on loopback).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtrun import __version__
from tests.conftest import SESSION
from tests.integration.test_store_s3 import moto
from tests.packaging.conftest import Installed, install, make_repo

__all__ = ["moto"]  # the fixture, imported so this module can start moto's server the same way

HELLO = """\
workflows:
  - name: hello
    provider: bash
    commands:
      - echo "hello from the installed dtrun"
      - mkdir -p output && echo saved > output/hello.txt
    artifacts: [output]
"""


def site_packages(installed: Installed) -> Path:
    found = list(installed.venv.glob("lib/python*/site-packages"))
    assert len(found) == 1, found
    return found[0]


def test_the_wheel_holds_the_templates_and_actions(plain_install: Installed) -> None:
    package = site_packages(plain_install) / "dtrun"
    assert (package / "_images" / "Dockerfile.j2").is_file()
    assert (package / "_images" / "layers" / "python.j2").is_file()
    assert (package / "_actions" / "shell" / "action-datatorch.yaml").is_file()
    assert (package / "images" / "data" / "cuda.json").is_file()


def test_nothing_but_the_declared_dependencies(plain_install: Installed, tmp_path: Path) -> None:
    probe = ("import importlib.util as u, dtrun; print(dtrun.__file__); "
             "print([m for m in ('s3fs', 'moto', 'flask', 'pytest', 'pip') if u.find_spec(m)])")
    proc = subprocess.run([str(plain_install.bin / "python"), "-c", probe], cwd=tmp_path, capture_output=True,
                          text=True, env=plain_install.env(), check=True)
    where, extras = proc.stdout.splitlines()
    assert where.startswith(str(site_packages(plain_install))), where  # not the checkout
    assert extras == "[]"


def test_plain_install_runs_a_workflow(plain_install: Installed, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {".dtrun/workflows.yaml": HELLO, "main.py": "print(1)\n"})

    helped = plain_install.dtrun("--help", cwd=repo)
    assert helped.code == 0, helped.output
    assert re.search(r"^\s+run\s", helped.stdout, re.MULTILINE), helped.stdout

    version = plain_install.dtrun("--version", cwd=tmp_path)
    assert version.code == 0, version.output
    assert version.stdout.startswith(f"dtrun {__version__} "), version.stdout

    validated = plain_install.dtrun("validate", cwd=repo)
    assert validated.code == 0, validated.output
    assert validated.stdout.strip() == "ok: 1 workflow in .dtrun/workflows.yaml"

    ran = plain_install.dtrun("run", "hello", cwd=repo)
    assert ran.code == 0, ran.output
    assert "hello from the installed dtrun" in ran.stdout
    assert "saved artifact output: 1 files" in ran.output
    assert "Traceback" not in ran.output
    assert list(plain_install.store.rglob("*.tar")), "no artifact archive in the store"


def test_plain_install_says_what_an_s3_store_needs(plain_install: Installed, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {".dtrun/workflows.yaml": HELLO})
    env = plain_install.env(DTRUN_STORE="s3://bucket/prefix")
    result = plain_install.dtrun("status", cwd=repo, env=env)
    assert result.code != 0
    assert "Traceback" not in result.output
    assert "s3fs" in result.output or "dtrun[s3]" in result.output, result.output


@pytest.fixture
def s3_install(wheel: Path, tmp_path: Path) -> Iterator[Installed]:
    installed = install(wheel, tmp_path / "s3", extras="s3")
    yield installed
    installed.cleanup()


def test_s3_install_runs_a_workflow_with_the_store_in_a_bucket(s3_install: Installed, moto: str,
                                                               tmp_path: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("s3", endpoint_url=moto, key="test", secret="test")
    bucket = f"dtrun-packaging-{SESSION}".lower()
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    url = f"s3://{bucket}/team-{os.urandom(4).hex()}"
    env = s3_install.env(DTRUN_STORE=url, AWS_ENDPOINT_URL=moto, AWS_ACCESS_KEY_ID="test",
                         AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    repo = make_repo(tmp_path / "repo", {".dtrun/workflows.yaml": HELLO})
    try:
        assert s3_install.dtrun("--help", cwd=repo, env=env).code == 0
        assert s3_install.dtrun("validate", cwd=repo, env=env).code == 0
        ran = s3_install.dtrun("run", "hello", cwd=repo, env=env)
        assert ran.code == 0, ran.output
        assert "hello from the installed dtrun" in ran.stdout
        names = fs.find(url.removeprefix("s3://"))
        assert any("/artifacts/" in n and n.endswith(".tar") for n in names), names
        assert not s3_install.store.exists()  # nothing went to the local default
    finally:
        s3_install.cleanup(url)


def test_shell_completion(plain_install: Installed, tmp_path: Path) -> None:
    shown = plain_install.dtrun("--show-completion", "bash", cwd=tmp_path)
    assert shown.code == 0, shown.output
    assert "complete -o default -F _dtrun_completion dtrun" in shown.stdout
    env = plain_install.env(_DTRUN_COMPLETE="complete_bash", COMP_WORDS="dtrun sta", COMP_CWORD="1")
    completed = plain_install.dtrun(cwd=tmp_path, env=env)
    assert completed.stdout.split() == ["status"], completed.output
