"""A flow file -> the engine's `Plan`: one plan job per flow job, whose steps a `FlowJobProgram` drives.

Everything that can be checked is checked before the first container starts: action references,
manifests, input types, the references of expressions, and every image is built. Then the flow runs on
the same engine as workflows (records, GPU claims, masked logs, stop, reconcile); what is particular to
flows (the summary of jobs, steps and outputs) is gathered from the programs once the run is over.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dtrun.backends.base import Backend, Output
from dtrun.config import Settings
from dtrun.errors import DtrunError, SpecError
from dtrun.flows.actions import Action, parse_ref, resolve
from dtrun.flows.expressions import EXPR, has_expressions
from dtrun.flows.inputs import check_env_names, check_inputs
from dtrun.flows.loader import LoadedFlow, order, relabel, upstream
from dtrun.flows.models import Job, Step
from dtrun.flows.process import build_image, image_spec
from dtrun.flows.program import WORKSPACE, FlowJobProgram, JobResult, Options, PreparedStep
from dtrun.images.spec import ImageSpec
from dtrun.plan import Job as PlanJob
from dtrun.plan import Plan
from dtrun.structs import struct

_REF = re.compile(r"\b(steps|jobs)\.([A-Za-z0-9_-]+)")


@struct
class FlowResult:
    flow: str
    run: str
    jobs: dict[str, JobResult]
    #: the run's exit code: 0, 1 when a job failed, 130 when it was stopped (Ctrl+C, `dtrun stop`)
    exit_code: int = 0

    @property
    def succeeded(self) -> bool:
        return not any(j.outcome == "failure" for j in self.jobs.values())


def step_id(step: Step, index: int) -> str:
    return step.id or f"step{index + 1}"


def step_label(step: Step, index: int) -> str:
    from dtrun.names import sanitize

    return step.id or (sanitize(step.name) if step.name else f"{index + 1}")


def prepare(loaded: LoadedFlow, backend: Backend, settings: Settings, *, base_dir: Path,
            output: Output) -> dict[str, list[PreparedStep]]:
    """Resolve actions, check inputs and references, get images. Raises before any step starts."""
    flow = loaded.flow
    resolved: dict[str, Action] = {}
    plan: dict[str, list[tuple[str, str, Step, Action | None]]] = {}
    for job_id in order(flow):
        job = flow.jobs[job_id]
        backend.check_resources(f"{flow.name}/{job_id}", job.resources)
        seen_steps: list[str] = []
        plan[job_id] = []
        ups = upstream(flow, job_id)
        for i, step in enumerate(job.steps):
            where = f"job '{job_id}', step {step.name or step_id(step, i)}"
            base = ("jobs", job_id, "steps", i)
            _check_refs(step, seen_steps, ups, loaded, base, where)
            action: Action | None = None
            if step.action is not None:
                try:
                    ref = parse_ref(step.action, base_dir=base_dir, settings=settings)
                    action = resolved.get(ref.text) or resolve(ref, backend)
                except DtrunError as exc:  # SpecErrors included (it has its own constructor)
                    raise relabel(exc, where, loaded.position(*base, "action")) from None
                resolved[ref.text] = action
                if action.manifest is not None:
                    check_env_names(action.manifest, where)
                    pending = {k for k, v in step.inputs.items() if has_expressions(v)}
                    positions = {k: loaded.position(*base, "inputs", k) for k in step.inputs}
                    check_inputs(action.manifest, step.inputs, where=where, positions=positions, pending=pending)
            plan[job_id].append((step_id(step, i), step_label(step, i), step, action))
            seen_steps.append(step_id(step, i))
    images: dict[str, str] = {}
    out: dict[str, list[PreparedStep]] = {}
    for job_id, steps in plan.items():
        out[job_id] = []
        for sid, label, step, action in steps:
            image = _image(flow.jobs[job_id], action, images, backend, settings, output)
            found = backend.image(image)
            out[job_id].append(PreparedStep(sid, label, step, action, image, found.id if found else ""))
    return out


def declared_values(prepared: Mapping[str, list[PreparedStep]], secrets: Mapping[str, str],
                    environ: Mapping[str, str]) -> dict[str, str]:
    """The values of the variables the actions' manifests declare in `env` (from `--secret` or the host's
    environment): secrets by DataTorch's meaning, so masked in output, logs and the summary."""
    from dtrun.flows.runs import declared_env

    return {name: value for steps in prepared.values() for p in steps if p.action and p.action.manifest
            for name, value in declared_env(p.action.manifest, secrets, environ, warn=lambda _: None).items()}


def _check_refs(step: Step, earlier: list[str], ups: set[str], loaded: LoadedFlow,
                base: tuple[str | int, ...], where: str) -> None:
    texts = [step.run or "", *[str(v) for v in step.inputs.values()], *[str(v) for v in step.env.values()],
             str(step.if_ or "")]
    for text in texts:
        for expr in EXPR.findall(text):
            for kind, name in _REF.findall(expr):
                if kind == "steps" and name not in earlier:
                    raise SpecError(f"{where}: '{expr}' refers to step '{name}', which is not an earlier "
                                    "step of this job", position=loaded.position(*base),
                                    hint=f"earlier steps: {', '.join(earlier) or 'none'} (give steps an `id`)")
                if kind == "jobs" and name not in ups:
                    raise SpecError(f"{where}: '{expr}' refers to job '{name}', which this job does not need",
                                    position=loaded.position(*base), hint=f"add `needs: [{name}]` to the job")


def _image(job: Job, action: Action | None, cache: dict[str, str], backend: Backend, settings: Settings,
           output: Output) -> str:
    spec: ImageSpec | None
    if action is None:
        from dtrun.flows.process import default_image

        spec = ImageSpec(provider="action", user_image=job.image or default_image(settings))
    else:
        spec = image_spec(action, settings, job.image, gpu=job.resources.gpu_count > 0)
    key = repr(spec) if spec is not None else f"dockerfile:{action.folder if action else ''}"
    if key not in cache:
        if spec is None:
            assert action is not None
            cache[key], _ = build_image(backend, action, settings, output=output)
        else:
            cache[key], _ = backend.ensure_image(spec, settings, output=output)
    return cache[key]


def flow_plan(loaded: LoadedFlow, prepared: dict[str, list[PreparedStep]], secrets: Mapping[str, str],
              options: Options | None = None) -> tuple[Plan, dict[str, FlowJobProgram]]:
    """The engine's plan of a prepared flow, and the program of each job (which keeps its results)."""
    flow = loaded.flow
    programs = {job_id: FlowJobProgram(flow, job_id, prepared[job_id], upstream(flow, job_id), secrets, options)
                for job_id in order(flow)}
    jobs = []
    for job_id, program in programs.items():
        job = flow.jobs[job_id]
        first = prepared[job_id][0].image if prepared[job_id] else ""
        jobs.append(PlanJob(workflow=job_id, provider="flow", image=ImageSpec(provider="flow", user_image=first),
                            command=None, entrypoint=None, env={}, working_dir=WORKSPACE, artifacts=[],
                            resources=job.resources, needs=list(job.needs), program=program))
    return Plan(target=flow.name, jobs=jobs), programs


def results(flow: str, run: str, programs: dict[str, FlowJobProgram], records: Mapping[str, Any],
            exit_code: int) -> FlowResult:
    """What each job did, from its program, completed from the engine's records for the jobs that did not
    get to run (skipped after a failure, or failed before their first step)."""
    out: dict[str, JobResult] = {}
    for job_id, program in programs.items():
        result = program.result
        record = records.get(job_id)
        if record is not None:
            for step in result.steps:
                step.job_record = record.id
            if result.outcome == "pending":
                state = getattr(record.state, "value", "")
                result.outcome = "skipped" if state in ("SKIPPED", "STOPPED", "ABORTED") else "failure"
                result.message = record.message
        out[job_id] = result
    return FlowResult(flow, run, out, exit_code)


def summary(result: FlowResult, programs: dict[str, FlowJobProgram]) -> dict[str, Any]:
    return {"flow": result.flow, "run": result.run, "outcome": "success" if result.succeeded else "failure",
            "jobs": {jid: programs[jid].summary() for jid in result.jobs}}
