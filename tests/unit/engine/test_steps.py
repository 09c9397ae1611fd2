"""Multi-step jobs (what flows compile to) on the engine with the in-memory backend: steps in order on
one workspace, the dialect told each step's outcome and lines, job outputs passed to the jobs that
need them, a skipped job not failing the run, masking, and the failure of one step."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dtrun.engine.events import OUTPUT, Event
from dtrun.engine.program import StepCommand
from dtrun.images.spec import ImageSpec
from dtrun.plan import Job, Plan
from dtrun.spec.models import Resources
from dtrun.store import State
from tests.unit.engine.fake_backend import FakeBackend, Script
from tests.unit.engine.test_engine import make


class Program:
    """A toy dialect: each step runs the script of the same name; a line `out=X` sets the job's output."""

    def __init__(self, steps: list[str], skip: str | None = None, timeout: float | None = None) -> None:
        self.steps, self.skip, self.timeout = steps, skip, timeout
        self.seen: list[tuple[int, str, int | None]] = []
        self.upstream: dict[str, dict[str, str]] = {}
        self.lines: list[str] = []
        self.out: dict[str, str] = {}

    def begin(self, run: str, upstream: Mapping[str, Mapping[str, Any]]) -> str | None:
        self.upstream = {k: dict(v) for k, v in upstream.items()}
        return self.skip

    def command(self, index: int, status: str) -> StepCommand | None:
        if status == "failure":
            return None
        return StepCommand(image="fake/busybox", command=["job", self.steps[index]], entrypoint=None, env={})

    def line(self, index: int, text: str) -> None:
        self.lines.append(text)
        if text.startswith("out="):
            self.out["value"] = text[4:]

    def done(self, index: int, outcome: str, exit_code: int | None, message: str | None, output_file: str) -> None:
        self.seen.append((index, outcome, exit_code))

    def finish(self, succeeded: bool) -> str | None:
        return None if succeeded else "a step failed"

    def outputs(self) -> dict[str, Any]:
        return dict(self.out)

    def fingerprint(self) -> str | None:
        return None

    def saved(self) -> dict[str, Any]:
        return {}

    def restore(self, saved: Mapping[str, Any]) -> None:
        raise AssertionError("a toy job without a fingerprint is never reused")


def flow_job(name: str, program: Program, *needs: str) -> Job:
    return Job(workflow=name, provider="flow", image=ImageSpec("flow", user_image="fake/busybox"), command=None,
               entrypoint=None, env={}, working_dir="/workspace", artifacts=[], resources=Resources(),
               needs=list(needs), program=program)


def test_steps_run_in_order_and_outputs_reach_the_next_job(tmp_path: Path) -> None:
    backend = FakeBackend({"fetch": Script(b"fetching\nout=42\n", 0.1), "count": Script(b"counted\n"),
                           "use": Script(b"used\n")})
    first, second = Program(["fetch", "count"]), Program(["use"])
    engine, events = make(tmp_path, backend)
    result = engine.run(Plan("f", [flow_job("a", first), flow_job("b", second, "a")]))
    assert [j.state for j in result.jobs] == [State.DONE, State.DONE] and result.exit_code == 0
    assert first.seen == [(0, "success", 0), (1, "success", 0)]
    assert [c.spec.command for c in backend.history] == [["job", "fetch"], ["job", "count"], ["job", "use"]]
    assert len({c.spec.mounts[0].volume for c in backend.history[:2]}) == 1  # one workspace
    assert second.upstream["a"] == {"value": "42"}
    assert [(e.prefix, e.data) for e in events if e.kind == OUTPUT][:2] == [("a/fetch", b"fetching\n"),
                                                                            ("a/fetch", b"out=42\n")]
    log = engine.store.read_bytes(engine.store.job_path(result.jobs[0].id, "logs.txt"))
    assert b"fetching" in log and b"counted" in log
    assert backend.volumes == set()  # the workspace is gone with the job


def test_a_failed_step_fails_the_job_and_later_steps_see_it(tmp_path: Path) -> None:
    backend = FakeBackend({"boom": Script(b"failing\n", exit=3), "after": Script()})
    program = Program(["boom", "after"])
    engine, _ = make(tmp_path, backend)
    result = engine.run(Plan("f", [flow_job("a", program)]))
    assert result.jobs[0].state == State.FAILED and result.exit_code == 3
    assert program.seen == [(0, "failure", 3), (1, "skipped", None)]
    assert "step boom failed: exited with code 3" in (result.jobs[0].message or "")


def test_a_skipped_job_skips_its_dependents_without_failing_the_run(tmp_path: Path) -> None:
    engine, _ = make(tmp_path, FakeBackend({"x": Script()}))
    result = engine.run(Plan("f", [flow_job("a", Program(["x"], skip="skipped: `if` is false")),
                                   flow_job("b", Program(["x"]), "a")]))
    assert [(j.state, j.message) for j in result.jobs] == [
        (State.SKIPPED, "skipped: `if` is false"), (State.SKIPPED, "not run: a did not succeed")]
    assert result.run.state == State.DONE and result.exit_code == 0


def test_step_output_is_masked(tmp_path: Path) -> None:
    backend = FakeBackend({"leak": Script(b"key=sekrit-value-1\n")})
    program = Program(["leak"])
    engine, events = make(tmp_path, backend, secrets={"KEY": "sekrit-value-1"})
    record = engine.run(Plan("f", [flow_job("a", program)])).jobs[0]
    assert program.lines == ["key=***"]
    assert b"sekrit" not in b"".join(e.data for e in events if isinstance(e, Event))
    assert b"sekrit" not in engine.store.read_bytes(engine.store.job_path(record.id, "logs.txt"))


class Deterministic(Program):
    """A toy dialect whose job says it is deterministic: its fingerprint is its steps (plus `salt`)."""

    def __init__(self, steps: list[str], salt: str = "") -> None:
        super().__init__(steps)
        self.salt = salt
        self.restored: dict[str, Any] | None = None

    def fingerprint(self) -> str | None:
        return ",".join(self.steps) + self.salt

    def saved(self) -> dict[str, Any]:
        return {"out": self.out}

    def restore(self, saved: Mapping[str, Any]) -> None:
        self.restored = dict(saved)
        self.out = dict(saved["out"])


def test_a_deterministic_job_is_reused_without_a_container(tmp_path: Path) -> None:
    backend = FakeBackend({"fetch": Script(b"fetching\nout=42\n"), "use": Script(b"used\n")})
    engine, events = make(tmp_path, backend)
    first = engine.run(Plan("f", [flow_job("a", Deterministic(["fetch"])), flow_job("b", Program(["use"]), "a")]))
    assert [j.state for j in first.jobs] == [State.DONE, State.DONE] and len(backend.history) == 2
    assert first.jobs[0].cache_key and first.jobs[1].cache_key is None  # b's dialect said: not deterministic

    events.clear()
    again, after = Deterministic(["fetch"]), Program(["use"])
    second = engine.run(Plan("f", [flow_job("a", again), flow_job("b", after, "a")]))
    assert [j.state for j in second.jobs] == [State.CACHED, State.DONE] and second.exit_code == 0
    assert [c.spec.command for c in backend.history[2:]] == [["job", "use"]]  # no container for `a`
    assert second.jobs[0].cached_from == first.jobs[0].id
    assert again.restored == {"out": {"value": "42"}} and after.upstream["a"] == {"value": "42"}
    assert any(e.kind == "result" and e.text.startswith("CACHED a") for e in events)
    assert b"fetching\n" in [e.data for e in events if e.kind == OUTPUT and e.job == "a"]  # its log, replayed


def test_the_job_cache_misses_on_another_fingerprint_and_with_no_cache(tmp_path: Path) -> None:
    backend = FakeBackend({"fetch": Script(b"out=1\n")})
    engine, _ = make(tmp_path, backend)
    engine.run(Plan("f", [flow_job("a", Deterministic(["fetch"]))]))
    changed = engine.run(Plan("f", [flow_job("a", Deterministic(["fetch"], salt="other input"))]))
    forced = engine.run(Plan("f", [flow_job("a", Deterministic(["fetch"]))]), no_cache=True)
    assert changed.jobs[0].state == State.DONE and forced.jobs[0].state == State.DONE
    assert len(backend.history) == 3


def test_a_failed_deterministic_job_is_not_reused(tmp_path: Path) -> None:
    backend = FakeBackend({"boom": Script(exit=2)})
    engine, _ = make(tmp_path, backend)
    engine.run(Plan("f", [flow_job("a", Deterministic(["boom"]))]))
    again = engine.run(Plan("f", [flow_job("a", Deterministic(["boom"]))]))
    assert again.jobs[0].state == State.FAILED and len(backend.history) == 2
