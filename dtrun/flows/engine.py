"""Running a flow: jobs in parallel unless `needs` orders them, each step its own container.

The steps of a job share one workspace volume mounted at /workspace (files written by one step are
there for the next), but nothing else: each step is a new process, so environment changes do not
carry over (seed 004). Everything that can be checked is checked before the first container starts:
action references, manifests, input types and the references of expressions. Records go to the same
store as workflow runs (one job record per step, with its log).
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dtrun.backends.docker import LABEL, ContainerSpec, DockerBackend, VolumeMount
from dtrun.config import Settings
from dtrun.errors import DtrunError, SpecError
from dtrun.flows import stepcache
from dtrun.flows.actions import Action, parse_ref, resolve
from dtrun.flows.expressions import EXPR, Scope, has_expressions, render, text_of, truthy
from dtrun.flows.inputs import check_env_names, check_inputs
from dtrun.flows.loader import LoadedFlow, order, relabel, upstream
from dtrun.flows.models import ActionManifest, Job, Step
from dtrun.flows.outputs import mask_value, parse_output_file, parse_stdout_line, typed_outputs
from dtrun.flows.process import ACTION_DIR, Process, build_image, folder_tar, image_spec, process, run_shell
from dtrun.flows.runs import cache_enabled, declared_env, step_context
from dtrun.images.manager import ensure_image
from dtrun.names import new_run_name, sanitize
from dtrun.snapshot import Snapshot
from dtrun.store import JobRecord, RunRecord, State, Store

WORKSPACE = "/workspace"
OUTPUT_FILE = "/dtrun/output/values"
_REF = re.compile(r"\b(steps|jobs)\.([A-Za-z0-9_-]+)")


@dataclass
class FlowHooks:
    """Where the engine reports: `status(prefix, message)`, `line(prefix, text)`, `build_line(text)`."""

    status: Callable[[str, str], None] = lambda prefix, message: None
    line: Callable[[str, str], None] = lambda prefix, text: None
    build_line: Callable[[str], None] = lambda text: None


@dataclass
class StepResult:
    id: str
    name: str
    action: str
    outcome: str = "pending"
    exit_code: int | None = None
    message: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    job_record: str | None = None
    manifest: ActionManifest | None = None  # issue 13: to type the outputs it declares


@dataclass
class JobResult:
    id: str
    name: str
    outcome: str = "pending"
    message: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)


@dataclass
class FlowResult:
    flow: str
    run: str
    jobs: dict[str, JobResult]

    @property
    def succeeded(self) -> bool:
        return not any(j.outcome == "failure" for j in self.jobs.values())

    def summary(self) -> dict[str, Any]:
        return {
            "flow": self.flow, "run": self.run, "outcome": "success" if self.succeeded else "failure",
            "jobs": {jid: {"name": j.name, "outcome": j.outcome, "message": j.message, "outputs": j.outputs,
                           "steps": [{"id": s.id, "name": s.name, "action": s.action, "outcome": s.outcome,
                                      "exit_code": s.exit_code, "message": s.message, "outputs": s.outputs}
                                     for s in j.steps]}
                     for jid, j in self.jobs.items()},
        }


@dataclass
class PreparedStep:
    id: str
    label: str
    step: Step
    action: Action | None
    image: str


def step_id(step: Step, index: int) -> str:
    return step.id or f"step{index + 1}"


def step_label(step: Step, index: int) -> str:
    return step.id or (sanitize(step.name) if step.name else f"{index + 1}")


class FlowEngine:
    def __init__(self, settings: Settings, store: Store, backend: DockerBackend, *, base_dir: Path,
                 secrets: dict[str, str] | None = None, snapshot: Snapshot | None = None,
                 hooks: FlowHooks | None = None) -> None:
        self.settings = settings
        self.store = store
        self.backend = backend
        self.base_dir = base_dir
        self.secrets = dict(secrets or {})
        self.snapshot = snapshot
        self.hooks = hooks or FlowHooks()
        self._lock = threading.Lock()
        self._snapshot_lock = threading.Lock()  # the packed snapshot is one file, read by parallel jobs
        self._cancel = threading.Event()
        self._active: dict[str, Any] = {}

    def labels(self, **extra: str) -> dict[str, str]:
        from dtrun.engine.runner import store_label

        return {LABEL: "1", f"{LABEL}.repo": self.store.repo, f"{LABEL}.store": store_label(self.store), **extra}

    # -- before anything runs ------------------------------------------------------------------------
    def prepare(self, loaded: LoadedFlow) -> dict[str, list[PreparedStep]]:
        """Resolve actions, check inputs and references, get images. Raises before any step starts."""
        flow = loaded.flow
        resolved: dict[str, Action] = {}
        plan: dict[str, list[tuple[str, str, Step, Action | None]]] = {}
        for job_id in order(flow):
            job = flow.jobs[job_id]
            self.backend.check_resources(f"{flow.name}/{job_id}", job.resources)
            seen_steps: list[str] = []
            plan[job_id] = []
            ups = upstream(flow, job_id)
            for i, step in enumerate(job.steps):
                where = f"job '{job_id}', step {step.name or step_id(step, i)}"
                base = ("jobs", job_id, "steps", i)
                self._check_refs(step, seen_steps, ups, loaded, base, where)
                action: Action | None = None
                if step.action is not None:
                    ref = parse_ref(step.action, base_dir=self.base_dir, settings=self.settings)
                    try:
                        action = resolved.get(ref.text) or resolve(ref, self.backend.client)
                    except DtrunError as exc:
                        # issue 13: relabel() rebuilds SpecErrors too (type(exc)(...) raised a TypeError)
                        raise relabel(exc, where, loaded.position(*base, "action")) from None
                    resolved[ref.text] = action
                    if action.manifest is not None:
                        check_env_names(action.manifest, where)
                        pending = {k for k, v in step.inputs.items() if has_expressions(v)}
                        positions = {k: loaded.position(*base, "inputs", k) for k in step.inputs}
                        check_inputs(action.manifest, step.inputs, where=where, positions=positions,
                                     pending=pending)
                plan[job_id].append((step_id(step, i), step_label(step, i), step, action))
                seen_steps.append(step_id(step, i))
        prepared: dict[str, list[PreparedStep]] = {}
        images: dict[str, str] = {}
        for job_id, steps in plan.items():
            job = flow.jobs[job_id]
            prepared[job_id] = []
            for sid, label, step, action in steps:
                prepared[job_id].append(PreparedStep(sid, label, step, action, self._image(job, action, images)))
        return prepared

    def _check_refs(self, step: Step, earlier: list[str], ups: set[str], loaded: LoadedFlow,
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
                                        position=loaded.position(*base),
                                        hint=f"add `needs: [{name}]` to the job")

    def _image(self, job: Job, action: Action | None, cache: dict[str, str]) -> str:
        output = self.hooks.build_line
        host = self.backend.host if "://" in self.backend.host else None
        from dtrun.images.spec import ImageSpec

        spec: ImageSpec | None
        if action is None:
            from dtrun.flows.process import default_image

            spec = ImageSpec(provider="action", user_image=job.image or default_image(self.settings))
        else:
            spec = image_spec(action, self.settings, job.image, gpu=job.resources.gpu_count > 0)
        key = repr(spec) if spec is not None else f"dockerfile:{action.folder if action else ''}"
        if key not in cache:
            if spec is None:
                assert action is not None
                cache[key], _ = build_image(self.backend.client, action, self.settings, docker_host=host,
                                            output=output)
            else:
                cache[key], _ = ensure_image(self.backend.client, spec, self.settings, docker_host=host,
                                             output=output)
        return cache[key]

    # -- running ------------------------------------------------------------------------------------------
    def run(self, loaded: LoadedFlow, prepared: dict[str, list[PreparedStep]], *, trigger: str = "manual") \
            -> FlowResult:
        flow = loaded.flow
        run = RunRecord(name=new_run_name(self.store.run_names()), repo=self.store.repo, workflow=flow.name,
                        variables={"trigger": trigger, "flow_file": str(loaded.path)},
                        commit=self.snapshot.commit if self.snapshot else None,
                        branch=self.snapshot.branch if self.snapshot else None, host=self.backend.host)
        run.state = State.RUNNING
        self.store.save_run(run)
        result = FlowResult(flow.name, run.name, {jid: JobResult(jid, job.name or jid) for jid, job in
                                                  flow.jobs.items()})
        self.hooks.status("", f"flow {flow.name}: run {run.name} ({len(flow.jobs)} jobs)")
        wanted = self.settings.max_parallel or ""
        limit = int(wanted) if wanted.isdigit() else len(flow.jobs)
        pending = dict(flow.jobs)
        running: dict[Future[None], str] = {}
        interrupted = False
        with ThreadPoolExecutor(max_workers=max(1, limit)) as pool:
            try:
                self._schedule(run, loaded, prepared, result, pool, pending, running, limit)
            except KeyboardInterrupt:
                # Ctrl+C: kill the steps that run now; the jobs' threads then record them and end.
                interrupted = True
                self._cancel.set()
                self.hooks.status("", "interrupted: stopping the running steps")
                with self._lock:
                    containers = list(self._active.values())
                for container in containers:
                    self.backend.kill(container)
        run.jobs = [s.job_record for j in result.jobs.values() for s in j.steps if s.job_record]
        run.state = State.STOPPED if interrupted else State.DONE if result.succeeded else State.FAILED
        run.exit_code = 130 if interrupted else 0 if result.succeeded else 1
        run.finished_at = time.time()
        self.store.save_run(run)
        self.store.write_json(self.store.repo_path("flows", f"{run.name}.json"), result.summary())
        if interrupted:
            raise KeyboardInterrupt
        return result

    def _schedule(self, run: RunRecord, loaded: LoadedFlow, prepared: dict[str, list[PreparedStep]],
                  result: FlowResult, pool: ThreadPoolExecutor, pending: dict[str, Job],
                  running: dict[Future[None], str], limit: int) -> None:
        """Start every job whose needs succeeded, skip those whose needs did not, until all are done."""
        while pending or running:
            for job_id in list(pending):
                job = pending[job_id]
                states = [result.jobs[n].outcome for n in job.needs]
                if any(s in ("failure", "skipped") for s in states):
                    failed = [n for n in job.needs if result.jobs[n].outcome in ("failure", "skipped")]
                    result.jobs[job_id].outcome = "skipped"
                    result.jobs[job_id].message = f"not run: {', '.join(failed)} did not succeed"
                    self.hooks.status(job_id, result.jobs[job_id].message or "")
                    del pending[job_id]
                elif all(s == "success" for s in states) and len(running) < limit:
                    del pending[job_id]
                    running[pool.submit(self._job, run, loaded, job_id, prepared[job_id], result)] = job_id
            if not running:
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                job_id = running.pop(future)
                error = future.exception()
                if error is not None:
                    result.jobs[job_id].outcome = "failure"
                    result.jobs[job_id].message = str(error)
                    self.hooks.status(job_id, f"failed: {error}")

    def _scope(self, loaded: LoadedFlow, result: FlowResult, job_id: str, steps: dict[str, dict[str, Any]],
               env: dict[str, str], status: str = "success") -> Scope:
        ups = upstream(loaded.flow, job_id)
        return Scope(steps=steps, jobs={j: result.jobs[j].outputs for j in ups}, secrets=self.secrets, env=env,
                     status=status)

    def _job(self, run: RunRecord, loaded: LoadedFlow, job_id: str, steps: list[PreparedStep],
             result: FlowResult) -> None:
        flow = loaded.flow
        job = flow.jobs[job_id]
        jr = result.jobs[job_id]
        outputs: dict[str, dict[str, Any]] = {}
        env: dict[str, str] = {}
        base_scope = self._scope(loaded, result, job_id, outputs, env)
        env.update({k: text_of(render(v, base_scope)) for k, v in flow.env.items()})
        env.update({k: text_of(render(v, base_scope)) for k, v in job.env.items()})
        if job.if_ is not None and not _condition(job.if_, base_scope):
            jr.outcome, jr.message = "skipped", "skipped: `if` is false"
            self.hooks.status(job_id, jr.message)
            return
        labels = self.labels(**{f"{LABEL}.run": run.name, f"{LABEL}.flow-job": job_id})
        volume = self.backend.create_volume(f"dtrun-fws-{sanitize(run.name)}-{uuid.uuid4().hex[:8]}", labels)
        deadline = time.monotonic() + job.timeout if job.timeout else None
        status = "success"
        first = True
        try:
            for prepared in steps:
                sr = StepResult(prepared.id, prepared.step.name or prepared.id,
                                _action_text(prepared), outcome="pending",
                                manifest=prepared.action.manifest if prepared.action else None)
                jr.steps.append(sr)
                prefix = f"{job_id}/{prepared.label}"
                scope = self._scope(loaded, result, job_id, outputs, env, status)
                cond = prepared.step.if_ if prepared.step.if_ is not None else "success()"
                if not _condition(cond, scope):
                    sr.outcome = "skipped"
                    continue
                if self._cancel.is_set():
                    sr.outcome, sr.message, status = "failure", "interrupted", "failure"
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    sr.outcome, sr.message = "failure", f"job timed out after {job.timeout:g}s"
                    status = "failure"
                    continue
                try:
                    self._step(run, job, prepared, scope, env, volume, labels, sr, prefix, first, deadline)
                except DtrunError as exc:
                    sr.outcome, sr.message = "failure", str(exc)
                    self.hooks.status(prefix, f"failed: {exc}")
                first = False
                outputs[prepared.id] = sr.outputs
                if sr.outcome == "failure":
                    status = "failure"
        finally:
            self.backend.remove_volume(volume)
        if status == "success":
            try:
                scope = self._scope(loaded, result, job_id, outputs, env)
                jr.outputs = {k: render(v, scope) for k, v in job.outputs.items()}  # issue 13: typed
            except DtrunError as exc:
                status, jr.message = "failure", f"job outputs: {exc}"
        failed = next((s for s in jr.steps if s.outcome == "failure"), None)
        jr.outcome = status
        if failed and not jr.message:
            jr.message = f"step {failed.id} failed: {failed.message}"
        self.hooks.status(job_id, "done" if status == "success" else f"failed ({jr.message})")

    def _step(self, run: RunRecord, job: Job, prepared: PreparedStep, scope: Scope, job_env: dict[str, str],
              volume: str, labels: dict[str, str], sr: StepResult, prefix: str, first: bool,
              deadline: float | None) -> None:
        step, action = prepared.step, prepared.action
        where = f"step {prefix}"
        # issue 13: local contexts (step.*, action.*, machine.*, directory.*, ...) for every step
        context = step_context(run.workflow or "", run.name, prepared.id, step.name, action, self.backend.host)
        scope = replace(scope, context=context)
        step_env = {k: text_of(render(v, scope)) for k, v in step.env.items()}
        cache: str | None = None
        if action is None:
            assert step.run is not None
            proc: Process = run_shell(step.run, replace(scope, env={**job_env, **step_env}))
        else:
            # issue 13: defaults with ${{ }}, manifest env (deprecations were reported by prepare())
            given = render(step.inputs, scope)
            values = check_inputs(action.manifest, given, where=where, scope=scope,
                                  warn=lambda _: None) if action.manifest else given
            proc = process(action.manifest, values, where, context=context)
            if action.manifest is not None:
                proc.env.update(declared_env(action.manifest, self.secrets, os.environ))
            if cache_enabled(action.manifest, step.cache):  # issue 13: DataTorch's action cache
                cache = stepcache.step_key(action, values)
                hit = stepcache.load(self.store, cache)
                if hit is not None:
                    sr.outputs, sr.outcome, sr.message = hit, "success", "outputs reused from the cache"
                    self.hooks.status(prefix, f"{sr.message} ({sr.action})")
                    return
        env = {**job_env, **step_env, **proc.env, "DTRUN_OUTPUT": OUTPUT_FILE, "DTRUN_RUN": run.name,
               "DTRUN_JOB": prefix.split("/")[0], "DTRUN_STEP": prepared.id, "DTRUN_WORKSPACE": WORKSPACE}
        mounts = [VolumeMount(volume, WORKSPACE)]
        ca = self.settings.ca_bundle_path
        if ca:
            ca_mount, ca_env = self.backend.ca_bundle_mount(ca, prepared.image)
            mounts.append(ca_mount)
            env.update(ca_env)
        record = JobRecord(id=uuid.uuid4().hex[:12], run=run.name, workflow=prefix, host=self.backend.host,
                           provider=f"action:{action.manifest.runs.using}" if action and action.manifest
                           else ("action:image" if action else "run"), image=prepared.image)
        record.move(State.SUBMITTED)
        sr.job_record = record.id
        spec = ContainerSpec(
            name=f"dtrun-{sanitize(run.name)}-{sanitize(prefix.replace('/', '-'))}-{record.id[:6]}",
            image=prepared.image, command=proc.command, entrypoint=proc.entrypoint, env=env,
            working_dir=WORKSPACE, labels={**labels, f"{LABEL}.job": record.id},
            mounts=mounts, gpus=job.resources.gpu_count, memory=job.resources.memory,
            shm_size=job.resources.shm_size, cpus=job.resources.cpu)
        container = self.backend.create(spec)
        record.container = container.name
        self.hooks.status(prefix, f"start ({sr.action})")
        with self._lock:
            self._active[record.id] = container
        try:
            if first and self.snapshot is not None:
                with self._snapshot_lock:
                    self.backend.put_archive(container, WORKSPACE, self.snapshot.pack()[0])
            if action is not None and action.folder is not None:
                self.backend.put_archive(container, "/", _under(ACTION_DIR, folder_tar(action.folder)))
            self.backend.put_file(container, OUTPUT_FILE, b"", mode=0o666)
            self._execute(container, record, sr, prefix, deadline)
            if cache is not None and sr.outcome == "success":
                stepcache.save(self.store, cache, sr.outputs, run=run.name)
        finally:
            with self._lock:
                self._active.pop(record.id, None)
            self.backend.remove(container)
            self.store.save_job(record)

    def _execute(self, container: Any, record: JobRecord, sr: StepResult, prefix: str,
                 deadline: float | None) -> None:
        timed_out = threading.Event()
        timer: threading.Timer | None = None
        if self._cancel.is_set():
            raise DtrunError("interrupted before it started")
        with tempfile.NamedTemporaryFile(prefix="dtrun-log-", suffix=".txt") as log:
            self.backend.start(container)
            record.move(State.RUNNING)
            self.store.save_job(record)
            if deadline is not None:
                def expire() -> None:
                    timed_out.set()
                    self.backend.kill(container)

                timer = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
                timer.daemon = True
                timer.start()
            pending = b""
            try:
                for chunk in self.backend.logs(container):
                    log.write(chunk)
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        self._line(prefix, line, sr)
                if pending:
                    self._line(prefix, pending, sr)
                exit_info = self.backend.wait(container)
            finally:
                if timer is not None:
                    timer.cancel()
            log.flush()
            self.store.upload(log.name, self.store.job_path(record.id, "logs.txt"))
        record.exit_code = sr.exit_code = exit_info.code
        sr.outputs.update(self._read_outputs(container))
        # issue 13: outputs keep JSON types (typed by the manifest), masked without turning into text
        sr.outputs = {k: mask_value(v, self.secrets) for k, v in typed_outputs(sr.manifest, sr.outputs).items()}
        if timed_out.is_set():
            sr.outcome, sr.message = "failure", "job timed out; the step was killed"
            record.move(State.FAILED, sr.message)
        elif exit_info.code == 0:
            sr.outcome = "success"
            record.move(State.DONE)
        else:
            sr.outcome = "failure"
            sr.message = "out of memory" if exit_info.oom_killed else f"exited with code {exit_info.code}"
            record.move(State.FAILED, sr.message)
        self.hooks.status(prefix, sr.outcome if sr.outcome == "success" else f"failed: {sr.message}")

    def _line(self, prefix: str, raw: bytes, sr: StepResult) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        found = parse_stdout_line(text)
        if found:
            sr.outputs[found[0]] = found[1]
        with self._lock:
            self.hooks.line(prefix, self._mask(text))

    def _mask(self, text: str) -> str:
        """Secrets never reach the terminal, the log or the summary (design principle 6)."""
        for secret in sorted(self.secrets.values(), key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _read_outputs(self, container: Any) -> dict[str, str]:
        import io
        import tarfile

        stream = self.backend.get_archive(container, OUTPUT_FILE)
        if stream is None:
            return {}
        data = b"".join(stream)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            handle = tar.extractfile(member) if member else None
            text = handle.read().decode("utf-8", "replace") if handle else ""
        return parse_output_file(text)


def _condition(value: str | bool, scope: Scope) -> bool:
    if isinstance(value, bool):
        return value
    from dtrun.flows.expressions import evaluate

    text = value.strip()
    whole = EXPR.fullmatch(text)
    return truthy(evaluate(whole.group(1) if whole else text, scope))


def _action_text(prepared: PreparedStep) -> str:
    if prepared.action is None:
        return "run"
    return prepared.action.ref.text


def _under(prefix: str, tar_bytes: bytes) -> bytes:
    """Re-root a tar made relative to a folder under `prefix` (put_archive extracts at `/`)."""
    import io
    import tarfile

    out = io.BytesIO()
    parts = prefix.strip("/").split("/")
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for i in range(1, len(parts) + 1):
            info = tarfile.TarInfo("/".join(parts[:i]))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            dst.addfile(info)
        for member in src.getmembers():
            handle = src.extractfile(member) if member.isfile() else None
            member.name = "/".join([*parts, member.name])
            dst.addfile(member, handle)
    return out.getvalue()
