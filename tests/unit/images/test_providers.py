"""What the torchrun, lab, notebook and code providers make of a workflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtrun.errors import SpecError
from dtrun.providers import PROVIDERS, ProviderContext
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
    assert job.command[7:9] == ["torchrun", "--standalone"]


@pytest.mark.parametrize(("data", "message"), [
    ({"provider": "torchrun"}, "has no `file`"),
    ({"provider": "torchrun", "file": "t.py", "nodes": 2}, "asks for 2 nodes"),
])
def test_torchrun_bad_input(tmp_path: Path, data: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        shape(tmp_path, **data)


@pytest.mark.parametrize(("provider", "tool", "app"), [("lab", "jupyterlab", "lab"),
                                                      ("notebook", "notebook", "notebook")])
def test_jupyter_is_preinstalled_and_listens_on_the_published_port(tmp_path: Path, provider: str, tool: str,
                                                                    app: str) -> None:
    job = shape(tmp_path, provider=provider)
    assert job.image.tools == (tool,)
    assert job.command[:6] == ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]
    script = job.command[6]
    assert script.startswith(f"exec jupyter {app} --ip=0.0.0.0 ")
    # the app's port is the one dtrun publishes (PORT_0 here), read when the container starts
    assert '--port="$PORT_0"' in script and job.ports == 1
    assert job.env == {"DTRUN_APP": provider, "DTRUN_APP_PORT": "PORT_0"}
    # the token comes from the container's env, never from the plan
    assert '--IdentityProvider.token="$DTRUN_APP_TOKEN"' in script
    assert "--ServerApp.root_dir=/workspace" in script


def test_user_ports_come_first_and_setup_runs_before_the_app(tmp_path: Path) -> None:
    job = shape(tmp_path, provider="lab", ports=2, commands=["pip list", "echo ready"])
    assert job.ports == 3 and job.env["DTRUN_APP_PORT"] == "PORT_2"
    lines = job.command[6].splitlines()
    assert lines[:2] == ["pip list", "echo ready"] and lines[2].startswith("exec jupyter lab")
    assert '--port="$PORT_2"' in lines[2]


def test_code_server_is_preinstalled_and_asks_for_the_job_token(tmp_path: Path) -> None:
    job = shape(tmp_path, provider="code", ports=1)
    assert job.image.tools == ("code-server",)
    script = job.command[6]
    assert script.startswith('exec env PASSWORD="$DTRUN_APP_TOKEN" code-server --bind-addr=0.0.0.0:"$PORT_1" '
                             "--auth=password")
    assert script.endswith(" /workspace")
    assert job.env == {"DTRUN_APP": "code", "DTRUN_APP_PORT": "PORT_1"} and job.ports == 2
