"""What the torchrun, lab, notebook and code providers make of a workflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtrun.errors import SpecError
from dtrun.providers import PROVIDERS, ProviderContext
from dtrun.providers.torchrun_launch import Torchrun
from dtrun.spec.models import Workflow


def shape(tmp_path: Path, **data: object):  # type: ignore[no-untyped-def]
    workflow = Workflow.model_validate({"name": "w", **data})
    return PROVIDERS[str(data["provider"])].shape(workflow, ProviderContext(project_root=tmp_path))


def test_torchrun_runs_one_process_per_gpu_with_torch_in_the_image(tmp_path: Path) -> None:
    job = shape(tmp_path, provider="torchrun", file="train.py", args=["--lr", "0.1"], resources={"gpu": 4})
    assert job.command == ["torchrun", "--standalone", "--nnodes=1", "--nproc_per_node=4", "train.py", "--lr", "0.1"]
    assert job.image.tools == ("torch",) and job.image.gpu


def test_torchrun_setup_commands_run_first_then_exec(tmp_path: Path) -> None:
    job = shape(tmp_path, provider="torchrun", file="train.py", commands=["pip list"])
    assert job.command[:6] == ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]
    assert job.command[6] == 'pip list\nexec "$@"'
    assert job.command[7:10] == ["torchrun", "torchrun", "--standalone"]  # $0, then "$@" is the whole argv


def test_torchrun_on_several_nodes_runs_the_same_argv_everywhere(tmp_path: Path) -> None:
    job = shape(tmp_path, provider="torchrun", file="train.py", args=["--lr", "0.1"], nodes=3, nproc_per_node=2)
    assert job.command == ["torchrun", "train.py", "--lr", "0.1"]  # the options come from each node's env
    assert job.torchrun == Torchrun(nodes=3, nproc_per_node=2)


def test_torchrun_on_one_node_needs_no_rendezvous_host(tmp_path: Path) -> None:
    job = shape(tmp_path, provider="torchrun", file="train.py", nproc_per_node=2)
    assert job.command[:4] == ["torchrun", "--standalone", "--nnodes=1", "--nproc_per_node=2"]
    assert job.torchrun is None


@pytest.mark.parametrize(("data", "message"), [
    ({"provider": "torchrun"}, "has no `file`"),
])
def test_torchrun_bad_input(tmp_path: Path, data: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        shape(tmp_path, **data)


@pytest.mark.parametrize(("provider", "tool", "app"), [("lab", "jupyterlab", "lab"),
                                                      ("notebook", "notebook", "notebook")])
def test_jupyter_is_preinstalled_and_serves_the_workspace(tmp_path: Path, provider: str, tool: str,
                                                           app: str) -> None:
    job = shape(tmp_path, provider=provider)
    assert job.image.tools == (tool,)
    assert job.command[:2] == ["jupyter", app] and "--ip=0.0.0.0" in job.command
    assert "--ServerApp.root_dir=/workspace" in job.command and job.ports == 1


def test_code_server_is_preinstalled_and_password_protected(tmp_path: Path) -> None:
    job = shape(tmp_path, provider="code", env={"PASSWORD": "s3cret"})
    assert job.image.tools == ("code-server",)
    assert job.env["PASSWORD"] == "s3cret"
    assert job.command[-5:] == ["code-server", "--bind-addr=0.0.0.0:8080", "--auth=password",
                                "--disable-telemetry", "/workspace"]
    generated = shape(tmp_path, provider="code")
    assert len(generated.env["PASSWORD"]) >= 16
