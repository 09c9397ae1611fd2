"""A flow job as the engine runs it: the dialect's side of `dtrun.engine.program.JobProgram`.

The engine runs the steps; this decides, step by step, what runs: conditions (`if`, `success()`,
`failure()`), expressions between steps (`steps.<id>.outputs`) and jobs (`jobs.<id>.outputs`), inputs
checked against the action's manifest, and outputs (`::name::value` lines, the `$DTRUN_OUTPUT` file).
Each step is a new process: environment changes do not carry over (seed 004).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import field, replace
from typing import TYPE_CHECKING, Any

from dtrun.engine.program import Reused, StepCommand
from dtrun.errors import DtrunError
from dtrun.flows import stepcache
from dtrun.flows.actions import Action
from dtrun.flows.expressions import EXPR, SERVER_ONLY, Scope, render, text_of, truthy, whole_expression
from dtrun.flows.inputs import check_inputs
from dtrun.flows.models import Flow, Step
from dtrun.flows.outputs import mask_value, parse_output_file, parse_stdout_line, typed_outputs
from dtrun.flows.process import ACTION_DIR, Process, folder_tar, process, run_shell
from dtrun.flows.runs import cache_enabled, declared_env, step_context
from dtrun.spec.typed import dump
from dtrun.structs import struct

if TYPE_CHECKING:
    from dtrun.store import Store

OUTPUT_FILE = "/dtrun/output/values"
WORKSPACE = "/workspace"
#: Names whose value changes from run to run: a job that reads them is not reused from the job cache.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.*-]*")
CACHED_MESSAGE = "outputs reused from the cache"


@struct
class StepResult:
    id: str
    name: str
    action: str
    outcome: str = "pending"
    exit_code: int | None = None
    message: str | None = None
    #: JSON values: `::k::<json>` keeps its type, `key=value` text is typed by the manifest's `outputs`
    outputs: dict[str, Any] = field(default_factory=dict)
    job_record: str | None = None


@struct
class JobResult:
    id: str
    name: str
    outcome: str = "pending"
    message: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)


@struct
class PreparedStep:
    id: str
    label: str
    step: Step
    action: Action | None
    image: str
    #: the image's id (part of the job cache's key: a rebuilt image is another job)
    image_id: str = ""

    @property
    def describe(self) -> str:
        return "run" if self.action is None else self.action.ref.text


@struct(frozen=True)
class Options:
    """What a flow job's steps need beyond the flow: the store (DataTorch's action cache), the Docker
    host (`machine.name`), values to mask beyond the secrets (declared `env` taken from the host)."""

    store: Store | None = None
    docker_host: str | None = None
    masked: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False


class FlowJobProgram:
    """One job of a flow: its prepared steps, the secrets for expressions, and what happened (`result`)."""

    def __init__(self, flow: Flow, job_id: str, steps: list[PreparedStep], ups: set[str],
                 secrets: Mapping[str, str], options: Options | None = None) -> None:
        self.flow, self.job_id, self.prepared, self.ups = flow, job_id, steps, ups
        self.job = flow.jobs[job_id]
        self.secrets = dict(secrets)
        self.options = options or Options()
        #: secrets and the declared env values from the host: none reaches the summary (principle 6)
        self.masked = {**self.options.masked, **self.secrets}
        self.steps = [p.label for p in steps]
        self.timeout = self.job.timeout
        self.result = JobResult(job_id, self.job.name or job_id)
        self.run = ""
        self.env: dict[str, str] = {}
        self.step_outputs: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self._cache_keys: dict[int, str] = {}

    def _scope(self, status: str = "success", env: dict[str, str] | None = None) -> Scope:
        return Scope(steps=self.step_outputs, jobs=self.jobs, secrets=self.secrets,
                     env=self.env if env is None else env, status=status)

    def begin(self, run: str, upstream: Mapping[str, Mapping[str, Any]]) -> str | None:
        self.run = run
        self.jobs = {j: dict(upstream.get(j, {})) for j in self.ups}
        scope = self._scope()
        self.env.update({k: text_of(render(v, scope)) for k, v in self.flow.env.items()})
        self.env.update({k: text_of(render(v, scope)) for k, v in self.job.env.items()})
        if self.job.if_ is not None and not condition(self.job.if_, scope):
            self.result.outcome, self.result.message = "skipped", "skipped: `if` is false"
            return self.result.message
        self.result.steps = [StepResult(p.id, p.step.name or p.id, p.describe) for p in self.prepared]
        return None

    def command(self, index: int, status: str) -> StepCommand | Reused | None:
        prepared = self.prepared[index]
        step, action = prepared.step, prepared.action
        context = step_context(self.flow.name, self.run, prepared.id, step.name, action, self.options.docker_host)
        scope = replace(self._scope(status), context=context)
        if not condition(step.if_ if step.if_ is not None else "success()", scope):
            return None
        where = f"step {self.job_id}/{prepared.label}"
        step_env = {k: text_of(render(v, scope)) for k, v in step.env.items()}
        proc: Process
        if action is None:
            assert step.run is not None
            proc = run_shell(step.run, replace(scope, env={**self.env, **step_env}))
        else:
            given = render(step.inputs, scope)
            manifest = action.manifest
            # deprecations were reported once by `compile.prepare`
            values = check_inputs(manifest, given, where=where, scope=scope, warn=lambda _: None) \
                if manifest else given
            proc = process(manifest, values, where, context=context)
            if manifest is not None:
                proc.env.update(declared_env(manifest, self.secrets, os.environ))
            store = self.options.store
            if store is not None and cache_enabled(manifest, step.cache):  # DataTorch's action cache
                key = stepcache.step_key(action, values)
                hit = None if self.options.no_cache else stepcache.load(store, key)
                if hit is not None:
                    self.result.steps[index].outputs = hit
                    return Reused(CACHED_MESSAGE, prepared.describe)
                self._cache_keys[index] = key
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
        result, prepared = self.result.steps[index], self.prepared[index]
        result.outcome, result.exit_code, result.message = outcome, exit_code, message
        key = self._cache_keys.pop(index, None)
        if outcome == "skipped":
            return
        outputs = {**result.outputs, **(parse_output_file(output_file) if output_file else {})}
        manifest = prepared.action.manifest if prepared.action else None
        result.outputs = {k: mask_value(v, self.masked) for k, v in typed_outputs(manifest, outputs).items()}
        self.step_outputs[prepared.id] = result.outputs
        if key is not None and outcome == "success" and self.options.store is not None:
            stepcache.save(self.options.store, key, result.outputs, run=self.run)

    def finish(self, succeeded: bool) -> str | None:
        result = self.result
        if succeeded:
            try:
                scope = self._scope()
                # JSON values: `${{ steps.x.outputs.n }}` alone keeps the number it was
                result.outputs = {k: mask_value(render(v, scope), self.masked) for k, v in self.job.outputs.items()}
            except DtrunError as exc:
                succeeded, result.message = False, f"job outputs: {exc}"
        result.outcome = "success" if succeeded else "failure"
        failed = next((s for s in result.steps if s.outcome == "failure"), None)
        if failed and not result.message:
            result.message = f"step {failed.id} failed: {failed.message}"
        return None if succeeded else result.message or "stopped"

    def outputs(self) -> dict[str, Any]:
        return dict(self.result.outputs)

    # -- the job cache (`dtrun.engine.program_cache`) ----------------------------------------------------
    def fingerprint(self) -> str | None:
        """A deterministic job: `cache: true` on the job, or (unset) every step an action with caching on
        (its manifest's `cache:` or the step's); never when anything reads a value that changes per run
        (`run.*`, the DataTorch server's `event`, `pipeline.projectId`, ...). The key holds the resolved
        steps, the actions' versions (git URL and tag, or the digest of a folder), image ids, the job's
        environment, the upstream outputs it reads, and the declared `env` values from the host."""
        if self.job.cache is False or self._reads_run_state():
            return None
        if self.job.cache is None and not all(p.action is not None and cache_enabled(p.action.manifest, p.step.cache)
                                              for p in self.prepared):
            return None
        steps = [{"id": p.id, "step": dump(p.step, by_alias=True), "image": p.image_id or p.image,
                  "action": stepcache.step_key(p.action, {}) if p.action else None}
                 for p in self.prepared]
        declared = {name: value for p in self.prepared if p.action and p.action.manifest
                    for name, value in declared_env(p.action.manifest, self.secrets, os.environ,
                                                    warn=lambda _: None).items()}
        data = {"flow": self.flow.name, "job": dump(self.job, by_alias=True, exclude=frozenset({"steps"})),
                "env": self.env, "upstream": self.jobs, "steps": steps, "declared": declared,
                "machine": step_context(self.flow.name, "", "", None, None, self.options.docker_host)["machine"]}
        return json.dumps(data, sort_keys=True, default=str)

    def _reads_run_state(self) -> bool:
        texts = [json.dumps(self.flow.env, default=str), json.dumps(dump(self.job, by_alias=True), default=str)]
        texts += [json.dumps(dump(p.action.manifest), default=str)
                  for p in self.prepared if p.action and p.action.manifest]
        for text in texts:
            for expr in EXPR.findall(text):
                for name in _NAME.findall(expr):
                    if name == "run" or name.startswith("run.") or \
                            any(name == s or name.startswith(s + ".") for s in SERVER_ONLY):
                        return True
        return False

    def saved(self) -> dict[str, Any]:
        return json.loads(json.dumps({"summary": self.summary()}, default=str))  # type: ignore[no-any-return]

    def restore(self, saved: Mapping[str, Any]) -> None:
        summary = saved.get("summary") or {}
        self.result.outcome, self.result.message = "success", "reused from the job cache"
        self.result.outputs = dict(summary.get("outputs") or {})
        for result, old in zip(self.result.steps, summary.get("steps") or [], strict=False):
            result.outcome, result.exit_code = old.get("outcome", "success"), old.get("exit_code")
            result.message, result.outputs = old.get("message"), dict(old.get("outputs") or {})
            self.step_outputs[result.id] = result.outputs

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
    inner = whole_expression(text)
    if inner is not None:
        return truthy(evaluate(inner, scope))
    if EXPR.search(text):  # text around expressions (`${{ a }} ${{ b }}`): its rendered text decides
        return truthy(render(text, scope))
    return truthy(evaluate(text, scope))
