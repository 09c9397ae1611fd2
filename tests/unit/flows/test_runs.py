"""The runs.using contract, local contexts, declared env, caching rule and typed outputs (pure functions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dtrun.errors import SpecError
from dtrun.flows.contexts import local_context, machine_name
from dtrun.flows.expressions import ExpressionError, Scope, render
from dtrun.flows.models import ActionManifest
from dtrun.flows.outputs import mask_value, typed_outputs
from dtrun.flows.runs import action_command, cache_enabled, cache_key, declared_env, image_tools


def manifest(runs: dict[str, Any], **extra: Any) -> ActionManifest:
    return ActionManifest.validate({"name": "act", "runs": runs, **extra})


def test_python_gets_the_inputs_json_as_its_last_argument() -> None:
    m = manifest({"using": "python", "main": "/src/add.py", "args": ["--v"]})
    found = action_command(m, {"a": 1, "s": "it's $(x)"}, "w")
    assert found.command == ["python3", "/dtrun/action/src/add.py", "--v", json.dumps({"a": 1, "s": "it's $(x)"})]
    assert json.loads(found.command[-1]) == {"a": 1, "s": "it's $(x)"}  # datatorch.get_inputs() reads argv[-1]
    assert found.env == {"INPUT_A": "1", "INPUT_S": "it's $(x)"}
    assert image_tools(m) == ("datatorch",) and image_tools(manifest({"using": "cmd", "command": "ls"})) == ()


@pytest.mark.parametrize("using", ["shell", "script"])
def test_script_file_with_arguments(using: str) -> None:
    found = action_command(manifest({"using": using, "script": "bin/run.sh --fast 'a b'"}), {"x": True}, "w")
    assert found.entrypoint == []
    assert found.command is not None and found.command[:2] == ["sh", "-c"]
    assert found.command[3:] == ["/dtrun/action/bin/run.sh", "--fast", "a b"]
    assert found.env == {"INPUT_X": "true"}
    with pytest.raises(SpecError, match=r"cannot read the arguments of runs\.script"):
        action_command(manifest({"using": using, "script": "run.sh ${{ inputs.q }}"}), {"q": "'open"}, "w")


@pytest.mark.parametrize("using", ["cmd", "commandline", "shell"])
def test_commands_never_paste_values_into_shell_text(using: str) -> None:
    m = manifest({"using": using, "command": "echo ${{ inputs.msg }} ${{ step.id }}"})
    found = action_command(m, {"msg": "; rm -rf /"}, "w", context={"step": {"id": "s1"}})
    assert found.command is not None
    assert "rm" not in found.command[2] and found.command[2].startswith('echo "${INPUT_MSG}" "${DTRUN_EXPR_0}"')
    assert found.env["INPUT_MSG"] == "; rm -rf /" and found.env["DTRUN_EXPR_0"] == "s1"


def test_docker_and_plain_images() -> None:
    docker = manifest({"using": "docker", "image": "x", "entrypoint": "run", "args": ["${{ inputs.n }}"]})
    found = action_command(docker, {"n": 3}, "w")
    assert (found.entrypoint, found.command) == (["run"], ["3"])
    plain = action_command(None, {"n": 3}, "w")
    assert (plain.entrypoint, plain.command, plain.env) == (None, None, {"INPUT_N": "3"})


def test_local_contexts_and_server_only_ones() -> None:
    context = local_context(flow="f", run="r-1", step_id="s1", step_name="Fit", action={"name": "a", "tag": "v1"},
                            machine="box", python_version="3.11.2")
    warned: list[str] = []
    scope = Scope(context=context, warn=warned.append)
    text = ("${{ directory.temp }} ${{ machine.name }} ${{ python.version }} ${{ step.id }} ${{ step.name }} "
            "${{ action.tag }} ${{ pipeline.name }} ${{ run.name }}")
    assert render(text, scope) == "/tmp box 3.11.2 s1 Fit v1 f r-1"
    assert render("[${{ pipeline.projectId }}][${{ event.type }}]", scope) == "[][]"
    assert warned == ["'pipeline.projectId' needs the DataTorch server; it is empty when a flow runs on a Docker host",
                      "'event.type' needs the DataTorch server; it is empty when a flow runs on a Docker host"]
    with pytest.raises(ExpressionError, match="no value in 'machine' 'cpu'"):
        render("${{ machine.cpu }}", scope)
    assert machine_name("ssh://me@gpu-box:22") == "gpu-box"


def test_datatorch_spellings_of_references() -> None:
    scope = Scope(inputs={"x": 1}, steps={"fit": {"acc": 0.9}})
    assert render("${{ input.x }}", scope) == 1 and render("${{ variable.x }}", scope) == 1
    assert render("${{ steps.fit.output.acc }}", scope) == 0.9 and render("${{ steps.fit.outputs.acc }}", scope) == 0.9


def test_declared_env_from_secrets_then_host_never_the_file() -> None:
    m = manifest({"using": "cmd", "command": "ls"}, env={"TOKEN": "api token", "REGION": None, "GONE": None})
    warned: list[str] = []
    values = declared_env(m, {"TOKEN": "s3cret"}, {"TOKEN": "host", "REGION": "eu", "OTHER": "x"}, warn=warned.append)
    assert values == {"TOKEN": "s3cret", "REGION": "eu"}
    assert len(warned) == 1 and "reads $GONE" in warned[0] and "--secret GONE=" in warned[0]


def test_cache_rule_and_key() -> None:
    cached = manifest({"using": "cmd", "command": "ls"}, cache=True)
    assert cache_enabled(cached, None) and not cache_enabled(cached, False)
    assert cache_enabled(manifest({"using": "cmd", "command": "ls"}), True) and not cache_enabled(None, None)
    assert cache_key("g", "v1", {"a": 1, "b": 2}) == cache_key("g", "v1", {"b": 2, "a": 1})
    assert cache_key("g", "v1", {"a": 1}) != cache_key("g", "v2", {"a": 1})


def test_typed_outputs_and_masking() -> None:
    m = manifest({"using": "cmd", "command": "ls"},
                 outputs={"n": {"type": "integer"}, "f": {"type": "float"}, "ok": {"type": "boolean"},
                          "l": {"type": "list"}, "s": {"type": "string"}, "bad": {"type": "integer"}})
    got = typed_outputs(m, {"n": "3", "f": "0.5", "ok": "true", "l": "[1]", "s": "7", "bad": "x", "free": "1"})
    assert got == {"n": 3, "f": 0.5, "ok": True, "l": [1], "s": "7", "bad": "x", "free": "1"}
    assert mask_value(3, {"k": "zz"}) == 3 and mask_value({"t": "zz"}, {"k": "zz"}) == '{"t": "***"}'


def test_step_cache_keys_and_store(tmp_path: Path) -> None:
    from dtrun.flows import stepcache
    from dtrun.flows.actions import Action, ActionRef
    from dtrun.store import Store

    m = manifest({"using": "cmd", "command": "ls"}, cache=True)
    remote = Action(ActionRef("o/r@v1", git="https://u:secret@host/o/r", tag="v1"), m)
    other_tag = Action(ActionRef("o/r@v2", git="https://u:secret@host/o/r", tag="v2"), m)
    assert stepcache.step_key(remote, {"a": 1}) != stepcache.step_key(other_tag, {"a": 1})
    (tmp_path / "act").mkdir()
    (tmp_path / "act" / "run.sh").write_text("echo 1\n")
    folder = Action(ActionRef("./act", folder=tmp_path / "act"), m, folder=tmp_path / "act")
    before = stepcache.step_key(folder, {})
    (tmp_path / "act" / "run.sh").write_text("echo 2\n")
    assert stepcache.step_key(folder, {}) != before  # a folder's version is its content
    store = Store(str(tmp_path / "store"), "repo")
    key = stepcache.step_key(remote, {"a": 1})
    assert stepcache.load(store, key) is None
    stepcache.save(store, key, {"sum": 42, "ok": True}, run="r1")
    assert stepcache.load(store, key) == {"sum": 42, "ok": True}
    assert "secret" not in "".join(p.read_text() for p in (tmp_path / "store").rglob("*.json"))
