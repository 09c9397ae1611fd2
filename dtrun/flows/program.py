"""A flow job as the engine runs it: the dialect's side of `dtrun.engine.program.JobProgram`.

The engine runs the steps; this decides, step by step, what runs: conditions (`if`, `success()`,
`failure()`), expressions between steps (`steps.<id>.outputs`) and jobs (`jobs.<id>.outputs`), inputs
checked against the action's manifest, and outputs (`::name::value` lines, the `$DTRUN_OUTPUT` file).
Each step is a new process: environment changes do not carry over (seed 004).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dtrun.engine.program import StepCommand
from dtrun.errors import DtrunError
from dtrun.flows.actions import Action
from dtrun.flows.expressions import EXPR, Scope, render, text_of, truthy
from dtrun.flows.inputs import check_inputs
from dtrun.flows.models import Flow, Step
from dtrun.flows.outputs import parse_output_file, parse_stdout_line
from dtrun.flows.process import ACTION_DIR, Process, folder_tar, process, run_shell

OUTPUT_FILE = "/dtrun/output/values"
WORKSPACE = "/workspace"


@dataclass
class StepResult:
    id: str
    name: str
    action: str
    outcome: str = "pending"
    exit_code: int | None = None
    message: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    job_record: str | None = None


@dataclass
class JobResult:
    id: str
    name: str
    outcome: str = "pending"
    message: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)


@dataclass
class PreparedStep:
    id: str
    label: str
    step: Step
    action: Action | None
    image: str

    @property
    def describe(self) -> str:
        return "run" if self.action is None else self.action.ref.text


class FlowJobProgram:
    """One job of a flow: its prepared steps, the secrets for expressions, and what happened (`result`)."""

    def __init__(self, flow: Flow, job_id: str, steps: list[PreparedStep], ups: set[str],
                 secrets: Mapping[str, str]) -> None:
        self.flow, self.job_id, self.prepared, self.ups = flow, job_id, steps, ups
        self.job = flow.jobs[job_id]
        self.secrets = dict(secrets)
        self.steps = [p.label for p in steps]
        self.timeout = self.job.timeout
        self.result = JobResult(job_id, self.job.name or job_id)
        self.env: dict[str, str] = {}
        self.step_outputs: dict[str, dict[str, str]] = {}
        self.jobs: dict[str, dict[str, str]] = {}

    def _scope(self, status: str = "success", env: dict[str, str] | None = None) -> Scope:
        return Scope(steps=self.step_outputs, jobs=self.jobs, secrets=self.secrets,
                     env=self.env if env is None else env, status=status)

    def begin(self, run: str, upstream: Mapping[str, Mapping[str, str]]) -> str | None:
        self.jobs = {j: dict(upstream.get(j, {})) for j in self.ups}
        scope = self._scope()
        self.env.update({k: text_of(render(v, scope)) for k, v in self.flow.env.items()})
        self.env.update({k: text_of(render(v, scope)) for k, v in self.job.env.items()})
        if self.job.if_ is not None and not condition(self.job.if_, scope):
            self.result.outcome, self.result.message = "skipped", "skipped: `if` is false"
            return self.result.message
        self.result.steps = [StepResult(p.id, p.step.name or p.id, p.describe) for p in self.prepared]
        return None

    def command(self, index: int, status: str) -> StepCommand | None:
        prepared = self.prepared[index]
        step, action = prepared.step, prepared.action
        scope = self._scope(status)
        if not condition(step.if_ if step.if_ is not None else "success()", scope):
            return None
        where = f"step {self.job_id}/{prepared.label}"
        step_env = {k: text_of(render(v, scope)) for k, v in step.env.items()}
        proc: Process
        if action is None:
            assert step.run is not None
            proc = run_shell(step.run, self._scope(status, {**self.env, **step_env}))
        else:
            given = render(step.inputs, scope)
            values = check_inputs(action.manifest, given, where=where) if action.manifest else given
            proc = process(action.manifest, values, where)
        files = []
        if action is not None and action.folder is not None:
            from dtrun.store.archive import under

            with under(ACTION_DIR, folder_tar(action.folder)) as tar:
                files.append(tar.read())
        # issue 15: a secret in the argv (an input of a python action's JSON, runs.args) goes as a variable;
        # only the secrets this step can reach (through env or inputs) are looked for
        from dtrun.secret_env import hide_values, named

        reachable = named([self.flow.env, self.job.env, step.env, step.inputs])
        entrypoint, command, hidden = hide_values(proc.entrypoint, proc.command,
                                                  {k: v for k, v in self.secrets.items() if k in reachable},
                                                  own_entrypoint=False, where=where)
        env = {**self.env, **step_env, **proc.env, **hidden, "DTRUN_OUTPUT": OUTPUT_FILE, "DTRUN_STEP": prepared.id}
        return StepCommand(image=prepared.image, command=command, entrypoint=entrypoint, env=env,
                           files=files, output_file=OUTPUT_FILE, describe=prepared.describe)

    def line(self, index: int, text: str) -> None:
        found = parse_stdout_line(text)
        if found:
            self.result.steps[index].outputs[found[0]] = found[1]

    def done(self, index: int, outcome: str, exit_code: int | None, message: str | None,
             output_file: str) -> None:
        result = self.result.steps[index]
        result.outcome, result.exit_code, result.message = outcome, exit_code, message
        if outcome == "skipped":
            return
        result.outputs.update(parse_output_file(output_file) if output_file else {})
        result.outputs = {k: self.mask(v) for k, v in result.outputs.items()}
        self.step_outputs[self.prepared[index].id] = result.outputs

    def finish(self, succeeded: bool) -> str | None:
        result = self.result
        if succeeded:
            try:
                scope = self._scope()
                result.outputs = {k: text_of(render(v, scope)) for k, v in self.job.outputs.items()}
            except DtrunError as exc:
                succeeded, result.message = False, f"job outputs: {exc}"
        result.outcome = "success" if succeeded else "failure"
        failed = next((s for s in result.steps if s.outcome == "failure"), None)
        if failed and not result.message:
            result.message = f"step {failed.id} failed: {failed.message}"
        return None if succeeded else result.message or "stopped"

    def outputs(self) -> dict[str, str]:
        return dict(self.result.outputs)

    def mask(self, text: str) -> str:
        """Secrets never reach the summary (design principle 6); the engine masks terminal and logs."""
        for secret in sorted(self.secrets.values(), key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text

    def summary(self) -> dict[str, Any]:
        j = self.result
        return {"name": j.name, "outcome": j.outcome, "message": j.message, "outputs": j.outputs,
                "steps": [{"id": s.id, "name": s.name, "action": s.action, "outcome": s.outcome,
                           "exit_code": s.exit_code, "message": s.message, "outputs": s.outputs} for s in j.steps]}


def condition(value: str | bool, scope: Scope) -> bool:
    if isinstance(value, bool):
        return value
    from dtrun.flows.expressions import evaluate

    text = value.strip()
    whole = EXPR.fullmatch(text)
    return truthy(evaluate(whole.group(1) if whole else text, scope))
