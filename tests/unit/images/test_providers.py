"""What the torchrun, lab, notebook and code providers make of a workflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtrun.errors import SpecError
from dtrun.providers import PROVIDERS, ProviderContext
from dtrun.providers.torchrun_launch import Torchrun
from dtrun.spec.models import Workflow


def shape(tmp_path: Path, **data: object):  # type: ignore[no-untyped-def]
    workflow = Workflow.validate({"name": "w", **data})
    return PROVIDERS[str(data["provider"])].shape(workflow, ProviderContext(project_root=tmp_path))


def test_torchrun_runs_one_process_per_gpu_with_torch_in_the_image(tmp_path: Path) -> None:
    job = shape(tmp_path, provider="torchrun", file="train.py", args=["--lr", "0.1"], resources={"gpu": 4})
    assert job.command == ["torchrun", "--standalone", "--nnodes=1", "--nproc_per_node=4", "train.py", "--lr", "0.1"]
    assert job.image.tools == ("torch",) and job.image.gpu


def test_setup_then_the_program_with_all_of_its_arguments() -> None:
    """Run for real: the setup line first, then the program, none of its words taken for bash's $0."""
    import subprocess

    from dtrun.providers.base import with_setup

    ran = subprocess.run(with_setup(["echo first"], ["echo", "second", "third"]), capture_output=True, text=True)
    assert ran.stdout == "first\nsecond third\n"
    assert with_setup([], ["echo", "x"]) == ["echo", "x"]


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
def test_jupyter_is_preinstalled_and_listens_on_the_published_port(tmp_path: Path, provider: str, tool: str,
                                                                    app: str) -> None:
    job = shape(tmp_path, provider=provider)
    assert job.image.tools == (tool,)
    # nothing to run first: the server itself, so signals reach it
    assert job.command[:4] == ["jupyter", app, "--ip=0.0.0.0", "--port=8000"]  # PORT_0: the published one
    assert job.ports == 1 and job.env == {"DTRUN_APP": provider, "DTRUN_APP_PORT": "PORT_0"}
    # the token comes from the container's env (JUPYTER_TOKEN, set by the engine), never from the plan
    assert not [a for a in job.command if "token" in a.lower()]
    assert "--ServerApp.root_dir=/workspace" in job.command


def test_user_ports_come_first_and_setup_runs_before_the_app(tmp_path: Path) -> None:
    job = shape(tmp_path, provider="lab", ports=2, setup=["pip list"], commands=["echo ready"])
    assert job.ports == 3 and job.env["DTRUN_APP_PORT"] == "PORT_2"
    assert job.command[:6] == ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]
    assert job.command[6].splitlines() == ["pip list", "echo ready", 'exec "$@"']
    assert job.command[7:11] == ["jupyter", "jupyter", "lab", "--ip=0.0.0.0"] and "--port=8002" in job.command


def test_code_server_is_preinstalled_and_asks_for_the_job_token(tmp_path: Path) -> None:
    job = shape(tmp_path, provider="code", ports=1)
    assert job.image.tools == ("code-server",)
    assert job.command[:3] == ["code-server", "--bind-addr=0.0.0.0:8001", "--auth=password"]
    assert job.command[-1] == "/workspace"
    assert job.env == {"DTRUN_APP": "code", "DTRUN_APP_PORT": "PORT_1"} and job.ports == 2


def test_the_engine_hands_each_app_its_token_under_its_own_name() -> None:
    from dtrun.providers import devenv

    assert devenv.token_env("lab", "t") == {"DTRUN_APP_TOKEN": "t", "JUPYTER_TOKEN": "t"}
    assert devenv.token_env("code", "t") == {"DTRUN_APP_TOKEN": "t", "PASSWORD": "t"}
