"""Running a multi-step job (a flow job): its steps in order, each in its own container, on one workspace.

Everything a one-step job gets, a step gets: a record (the job's, whose state, container and log follow
the steps), GPU claims (`Backend.submit`), masked output to the terminal and to the stored log (one log
per job, timestamped, so `dtrun logs --since` and `-f` work), stop and abort (`dtrun stop`, Ctrl+C),
and labels that let a later command reconcile a step whose client died. The dialect (`JobProgram`)
decides what each step runs and what its outputs are.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from dtrun.backends.base import LABEL, ContainerSpec, VolumeMount
from dtrun.engine import control
from dtrun.engine.collect import WORKSPACE_LABEL
from dtrun.engine.events import OUTPUT, RESULT, STATUS, Event
from dtrun.engine.logs import LogSink, stream_until_exit
from dtrun.engine.program import JobProgram, Reused, StepCommand
from dtrun.errors import DtrunError
from dtrun.masking import Masker
from dtrun.names import sanitize
from dtrun.plan import WORKSPACE, Job
from dtrun.store import JobRecord, State

if TYPE_CHECKING:
    from dtrun.engine.runner import Engine, _RunState

#: On a step's container: how many steps of its job come after it (reconcile must not call a job whose
#: client died between steps DONE).
STEPS_LEFT_LABEL = f"{LABEL}.steps-left"
#: On a step's container: the job's workspace volume (removed by whoever settles the job).
WORKSPACE_VOLUME = f"{LABEL}.job-workspace"


class _Lines:
    """Masked output chunks -> whole lines, for the dialect (outputs on stdout) and `[job/step]` events."""

    def __init__(self, engine: Engine, job: str, step: str, program: JobProgram, index: int) -> None:
        self.engine, self.job, self.step, self.program, self.index = engine, job, step, program, index
        self.pending = b""

    def feed(self, chunk: bytes) -> None:
        self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            self._line(line)

    def close(self) -> None:
        if self.pending:
            self._line(self.pending)
            self.pending = b""

    def _line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        self.program.line(self.index, text)
        self.engine.emit(Event(OUTPUT, job=self.job, step=self.step, data=(text + "\n").encode()))


def run_program(engine: Engine, job: Job, record: JobRecord, state: _RunState) -> None:
    program = job.program
    assert program is not None
    name = job.workflow
    skipped = program.begin(state.run.name, dict(state.outputs))
    if skipped:
        record.move(State.SKIPPED, skipped)
        engine.store.save_job(record)
        engine.emit(Event(STATUS, skipped, job=name, step=""))
        return
    from dtrun.engine import program_cache

    record.cache_key = program_cache.job_key(engine, job, program)
    if record.cache_key and not state.no_cache and program_cache.reuse(engine, job, program, record):
        state.outputs[name] = program.outputs()
        return
    labels = engine.labels(**{f"{LABEL}.run": state.run.name, f"{LABEL}.job": record.id, f"{LABEL}.workflow": name})
    viewed = engine.code.view(f"dtrun-ws-{record.id}", labels)  # the run's tree, copy-on-write (engine/code.py)
    workspace = viewed or engine.backend.create_volume(f"dtrun-ws-{record.id}", labels)
    deadline = time.monotonic() + program.timeout if program.timeout else None
    status, failure, halted = "success", None, None
    log_steps: list[tuple[int, str]] = []  # where each step's output begins in the log (program_cache)
    with tempfile.NamedTemporaryFile(prefix="dtrun-log-", suffix=".txt") as log:
        try:
            for index, label in enumerate(program.steps):
                halted = control.requested(engine.store, record.id)
                if halted:
                    program.done(index, "skipped", None, "stopped before it started", "")
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    program.done(index, "failure", None, f"job timed out after {program.timeout:g}s", "")
                    status = "failure"
                    continue
                try:
                    command = program.command(index, status)
                except DtrunError as exc:
                    program.done(index, "failure", None, str(exc), "")
                    engine.emit(Event(STATUS, f"failed: {exc}", job=name, step=label))
                    status, failure = "failure", failure or f"step {label} failed: {exc}"
                    continue
                if command is None:
                    program.done(index, "skipped", None, None, "")
                    continue
                if isinstance(command, Reused):  # settled by the dialect (its own cache): no container
                    engine.emit(Event(STATUS, f"{command.message} ({command.describe})", job=name, step=label))
                    program.done(index, "success", None, command.message, "")
                    continue
                log.flush()
                log_steps.append((log.tell(), label))
                outcome, message = _step(engine, job, record, state, command, index, label, workspace, labels,
                                         log, deadline, first=index == 0 and viewed is None)
                if outcome == "failure":
                    status, failure = "failure", failure or f"step {label} failed: {message}"
                log.flush()  # the log so far is stored as each step ends: a client killed in a later step
                engine.store.upload(log.name, engine.store.job_path(record.id, "logs.txt"))  # loses none
                halted = halted or control.requested(engine.store, record.id)
        finally:
            engine.backend.remove_volume(workspace)
            log.flush()
            engine.store.upload(log.name, engine.store.job_path(record.id, "logs.txt"))
    problem = program.finish(status == "success" and not halted)
    if halted:
        record.move(State.ABORTED if halted == control.ABORT else State.STOPPED, "stopped by the user")
    elif status == "success" and problem is None:
        record.move(State.DONE)
    else:
        record.move(State.FAILED, failure or problem)
    state.outputs[name] = program.outputs()
    engine.store.save_job(record)
    if record.cache_key and record.state == State.DONE:
        program_cache.remember(engine, record, program, log_steps)
    ok = record.state == State.DONE
    engine.emit(Event(RESULT, "done" if ok else f"failed ({record.message})" if record.state == State.FAILED
                      else record.state.value, job=name, step="", state=record.state.value))


def _step(engine: Engine, job: Job, record: JobRecord, state: _RunState, command: StepCommand, index: int,
          label: str, workspace: str, labels: dict[str, str], log: Any, deadline: float | None,
          first: bool) -> tuple[str, str | None]:
    """One step's container, from creation to removal; (outcome, message)."""
    program = job.program
    assert program is not None
    backend, name = engine.backend, job.workflow
    mounts = [VolumeMount(workspace, WORKSPACE)]
    env = {**command.env, "DTRUN_RUN": state.run.name, "DTRUN_JOB": name, "DTRUN_WORKSPACE": WORKSPACE}
    ca = engine.settings.ca_bundle_path
    if ca:
        ca_mount, ca_env = backend.ca_bundle_mount(ca, command.image)
        mounts.append(ca_mount)
        env.update(ca_env)
    left = len(program.steps) - index - 1
    spec = ContainerSpec(
        name=f"dtrun-{sanitize(state.run.name)}-{sanitize(name)}-{sanitize(label)}-{record.id[:6]}-"
             f"{uuid.uuid4().hex[:4]}",
        image=command.image, command=command.command, entrypoint=command.entrypoint, env=env,
        working_dir=WORKSPACE, labels={**labels, STEPS_LEFT_LABEL: str(left), WORKSPACE_VOLUME: workspace,
                                       **({WORKSPACE_LABEL: workspace} if left == 0 else {})},
        mounts=mounts, gpus=job.resources.gpu_count, memory=job.resources.memory,
        shm_size=job.resources.shm_size, cpus=job.resources.cpu)
    record.image = command.image
    container = backend.submit(spec, job.resources.gpu, notify=lambda m: engine.emit(Event(STATUS, m.strip(), job=name,
                                                                                          step=label)))
    try:
        record.container = container.name
        if first and engine.snapshot.files:
            with engine.code_lock:
                backend.put_archive(container, WORKSPACE, engine.snapshot.pack()[0])
        for archive in command.files:
            backend.put_archive(container, "/", archive)
        if command.output_file:
            backend.put_file(container, command.output_file, b"", mode=0o666)
        engine.emit(Event(STATUS, f"start ({command.describe})", job=name, step=label))
        backend.start(container)
        if record.state != State.RUNNING:
            record.move(State.RUNNING)
        engine.store.save_job(record)
        with state.lock:
            state.containers[record.id] = container
        action = control.requested(engine.store, record.id)
        if action:
            engine.signal(container, action)
        timed_out = threading.Event()
        timer = None
        if deadline is not None:
            def expire() -> None:
                timed_out.set()
                backend.kill(container)

            timer = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
            timer.daemon = True
            timer.start()
        lines = _Lines(engine, name, label, program, index)
        sink = LogSink(log, lines.feed, Masker(engine.masker_values))
        try:
            exit_info = stream_until_exit(backend, container, sink)
        finally:
            sink.close()
            lines.close()
            if timer is not None:
                timer.cancel()
        with state.lock:
            state.containers.pop(record.id, None)
        record.exit_code = exit_info.code
        written = _read_file(engine, container, command.output_file) if command.output_file else ""
    finally:
        backend.remove(container)
    asked = control.requested(engine.store, record.id)
    if timed_out.is_set():
        outcome, message = "failure", "job timed out; the step was killed"
    elif asked:
        outcome, message = "failure", "stopped by the user"
    elif exit_info.interrupted:
        outcome, message = "failure", exit_info.interrupted
    elif exit_info.code == 0:
        outcome, message = "success", None
    else:
        outcome = "failure"
        message = "out of memory" if exit_info.oom_killed else f"exited with code {exit_info.code}"
    program.done(index, outcome, exit_info.code, message, written)
    engine.emit(Event(STATUS, "success" if outcome == "success" else f"failed: {message}", job=name, step=label))
    return outcome, message


def _read_file(engine: Engine, container: Any, path: str) -> str:
    stream = engine.backend.get_archive(container, path)
    if stream is None:
        return ""
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member else None
        return handle.read().decode("utf-8", "replace") if handle else ""
