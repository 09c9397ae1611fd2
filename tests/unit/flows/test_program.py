"""A flow job as the engine drives it (`FlowJobProgram`), without containers: what each step runs, the
action cache as a `Reused` step, typed and masked outputs, conditions, and when a job is deterministic
enough for the job cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dtrun.engine.program import Reused, StepCommand
from dtrun.flows.actions import Action, ActionRef
from dtrun.flows.expressions import Scope
from dtrun.flows.models import ActionManifest, Flow
from dtrun.flows.program import FlowJobProgram, Options, PreparedStep, condition
from dtrun.store import Store


def action(tmp_path: Path, **manifest: Any) -> Action:
    folder = tmp_path / "act"
    folder.mkdir(exist_ok=True)
    (folder / "main.py").write_text("print('hi')\n")
    data = {"name": "act", "runs": {"using": "python", "main": "main.py"}, **manifest}
    return Action(ActionRef("./act", folder=folder), ActionManifest.validate(data), folder=folder)


def program(tmp_path: Path, job: dict[str, Any], act: Action | None, *, store: Store | None = None,
            secrets: dict[str, str] | None = None, masked: dict[str, str] | None = None,
            upstream: dict[str, Any] | None = None) -> FlowJobProgram:
    flow = Flow.validate({"name": "f", "jobs": {"j": job}})
    steps = [PreparedStep(s.id or f"step{i + 1}", s.id or str(i + 1), s, act if s.action else None, "img",
                          "sha256:img")
             for i, s in enumerate(flow.jobs["j"].steps)]
    found = FlowJobProgram(flow, "j", steps, set(upstream or {}), secrets or {},
                           Options(store=store, docker_host="ssh://gpu-box", masked=masked or {}))
    assert found.begin("run-1", upstream or {}) is None
    return found


def test_a_python_step_gets_inputs_json_contexts_and_declared_env(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_TOKEN", "from-the-host")
    act = action(tmp_path, env={"HOST_TOKEN": "a token"},
                 inputs={"a": {"type": "integer"}, "where": {"default": "${{ machine.name }}/${{ step.name }}"}})
    prog = program(tmp_path, {"steps": [{"id": "add", "name": "Add", "action": "./act", "inputs": {"a": "7"}}]},
                   act)
    command = prog.command(0, "success")
    assert isinstance(command, StepCommand) and command.command is not None
    assert json.loads(command.command[-1]) == {"a": 7, "where": "gpu-box/Add"}
    assert command.env["INPUT_A"] == "7" and command.env["HOST_TOKEN"] == "from-the-host"
    assert command.env["DTRUN_STEP"] == "add" and command.files  # the action's folder goes in


def test_outputs_keep_json_types_and_are_masked(tmp_path: Path) -> None:
    act = action(tmp_path, outputs={"n": {"type": "integer"}})
    prog = program(tmp_path, {"outputs": {"total": "${{ steps.s.outputs.n }}", "text": "n=${{ steps.s.outputs.n }}"},
                              "steps": [{"id": "s", "action": "./act"}]}, act, masked={"TOKEN": "tok-9"})
    prog.line(0, "::ratio::0.5")
    prog.line(0, "::leak::\"has tok-9 inside\"")
    prog.done(0, "success", 0, None, "n=41\n")
    assert prog.result.steps[0].outputs == {"ratio": 0.5, "leak": "has *** inside", "n": 41}
    assert prog.finish(True) is None
    assert prog.outputs() == {"total": 41, "text": "n=41"}


def test_the_action_cache_reuses_outputs_without_a_container(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"), "local/test")
    act = action(tmp_path, cache=True, inputs={"a": {"type": "integer"}})
    job = {"steps": [{"id": "s", "action": "./act", "inputs": {"a": 1}}]}
    first = program(tmp_path, job, act, store=store)
    assert isinstance(first.command(0, "success"), StepCommand)
    first.line(0, "::sum::3")
    first.done(0, "success", 0, None, "")
    again = program(tmp_path, job, act, store=store)
    reused = again.command(0, "success")
    assert reused == Reused("outputs reused from the cache", "./act")
    again.done(0, "success", None, "outputs reused from the cache", "")
    assert again.result.steps[0].outputs == {"sum": 3}
    other = program(tmp_path, {"steps": [{"id": "s", "action": "./act", "inputs": {"a": 2}}]}, act, store=store)
    assert isinstance(other.command(0, "success"), StepCommand)  # other inputs: another key


def test_conditions_with_text_around_expressions() -> None:
    scope = Scope(steps={"a": {"x": "1"}}, env={"E": ""})
    assert condition("${{ steps.a.outputs.x == '1' }}", scope)
    assert not condition("${{ env.E }}", scope)
    # two expressions are two expressions (read as one, `x }} ${{ env.E` was an unreadable expression)
    assert condition("${{ steps.a.outputs.x }} ${{ env.E }}", scope)
    assert not condition("${{ env.E }}${{ env.E }}", Scope(env={"E": ""}))


def test_which_jobs_are_deterministic(tmp_path: Path) -> None:
    cached, plain = action(tmp_path, cache=True), action(tmp_path)
    step = {"id": "s", "action": "./act"}
    assert program(tmp_path, {"steps": [step]}, cached).fingerprint() is not None
    assert program(tmp_path, {"steps": [step]}, plain).fingerprint() is None  # the action did not opt in
    assert program(tmp_path, {"steps": [{**step, "cache": True}]}, plain).fingerprint() is not None
    assert program(tmp_path, {"steps": [step, {"run": "echo hi"}]}, cached).fingerprint() is None
    assert program(tmp_path, {"cache": True, "steps": [step, {"run": "echo hi"}]}, plain).fingerprint() is not None
    assert program(tmp_path, {"cache": False, "steps": [step]}, cached).fingerprint() is None
    # values that change from run to run make a job run every time, whatever it says
    assert program(tmp_path, {"cache": True, "steps": [{"run": "echo ${{ run.name }}"}]}, None).fingerprint() is None
    assert program(tmp_path, {"steps": [{**step, "if": "${{ event.x }}"}]}, cached).fingerprint() is None


def test_the_job_cache_key_follows_inputs_upstream_outputs_and_declared_env(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    act = action(tmp_path, cache=True, env={"KEY": "k"}, inputs={"a": {}})

    def key(a: str, up: int) -> str | None:
        job = {"needs": ["u"], "steps": [{"id": "s", "action": "./act",
                                          "inputs": {"a": a, "b": "${{ jobs.u.outputs.n }}"}}]}
        return program(tmp_path, job, act, upstream={"u": {"n": up}}).fingerprint()

    monkeypatch.setenv("KEY", "one")
    base = key("x", 1)
    assert base is not None and key("x", 1) == base
    assert key("y", 1) != base and key("x", 2) != base
    monkeypatch.setenv("KEY", "two")
    assert key("x", 1) != base


def test_saved_result_restores_the_summary(tmp_path: Path) -> None:
    act = action(tmp_path, cache=True)
    job = {"outputs": {"o": "${{ steps.s.outputs.v }}"}, "steps": [{"id": "s", "action": "./act"}]}
    first = program(tmp_path, job, act)
    first.line(0, "::v::[1, 2]")
    first.done(0, "success", 0, None, "")
    first.finish(True)
    again = program(tmp_path, job, act)
    again.restore(json.loads(json.dumps(first.saved())))
    assert again.outputs() == {"o": [1, 2]} and again.summary()["steps"] == first.summary()["steps"]
    assert again.result.outcome == "success" and again.step_outputs == {"s": {"v": [1, 2]}}
