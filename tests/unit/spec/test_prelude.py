"""Every provider's job creates its artifact folders and runs `before_run` first (providers.base.prelude)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from dtrun.providers import PROVIDERS, ProviderContext
from dtrun.spec.models import Workflow


def shape(tmp_path: Path, **data: Any) -> Any:
    workflow = Workflow.validate({"name": "w", **data})
    return PROVIDERS[workflow.provider].shape(workflow, ProviderContext(project_root=tmp_path))


def test_bash_gets_the_lines_at_the_start_of_its_own_script(tmp_path: Path) -> None:
    job = shape(tmp_path, provider="bash", commands=["echo hi > out/a.txt"], before_run=["echo before"],
                artifacts=["out", {"path": "/opt/x y"}])
    assert job.command[:6] == ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"] and len(job.command) == 7
    lines = job.command[6].splitlines()
    assert lines[0].startswith("for _dtrun_a in out '/opt/x y'; do mkdir -p -- ")
    assert lines[1:] == ["echo before", "echo hi > out/a.txt"]


def test_the_docker_providers_sh_script_keeps_set_e_first(tmp_path: Path) -> None:
    job = shape(tmp_path, image="busybox", commands=["echo hi > out/a"], artifacts=["out"])
    assert job.command[:2] == ["/bin/sh", "-c"] and job.entrypoint == []
    lines = job.command[2].splitlines()
    assert lines[0] == "set -e" and "mkdir -p" in lines[1] and lines[2] == "echo hi > out/a"


def test_an_image_run_as_it_is_is_not_wrapped(tmp_path: Path) -> None:
    """Its artifact folders are made by the engine before it starts (`JobShape.folders`, engine/kept.py)."""
    as_is = shape(tmp_path, image="busybox", artifacts=["out", "/opt/r"])
    assert as_is.command is None and as_is.folders == ["out", "/opt/r"]
    given = shape(tmp_path, image="busybox", entrypoint=["/entry"], commands=["x"], artifacts=["out"])
    assert given.entrypoint == ["/entry"] and "mkdir" not in " ".join(given.command) and given.folders == ["out"]
    assert shape(tmp_path, provider="bash", commands=["x"], artifacts=["out"]).folders == []


def test_before_run_cannot_precede_an_images_own_command(tmp_path: Path) -> None:
    import pytest

    from dtrun.errors import SpecError

    with pytest.raises(SpecError, match="`before_run` needs `commands` here"):
        shape(tmp_path, image="busybox", before_run=["echo first"])


def test_other_commands_are_wrapped_and_execed(tmp_path: Path) -> None:
    job = shape(tmp_path, provider="lab", artifacts=["notebooks"])
    assert job.command[:6] == ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]
    assert job.command[6].endswith('exec "$@"') and "notebooks" in job.command[6]
    assert job.command[7:9] == ["jupyter", "jupyter"]
    assert shape(tmp_path, provider="lab").command[0] == "jupyter"  # nothing to run first: not wrapped


def test_the_prelude_really_makes_empty_folders_and_does_not_stop_the_job(tmp_path: Path) -> None:
    job = shape(tmp_path, provider="bash", commands=["ls -A out | wc -l", "echo hi > out/a", "cat out/a"],
                artifacts=["out", "deep/er", "/proc/forbidden"])
    done = subprocess.run(job.command, cwd=tmp_path, capture_output=True, text=True)
    assert (done.returncode, done.stdout.split()) == (0, ["0", "hi"])
    assert (tmp_path / "deep" / "er").is_dir()
    assert "dtrun: cannot create the artifact folder /proc/forbidden as" in done.stderr
