"""Multi-step jobs: the small interface through which a dialect tells the engine what each step runs.

A plan job with a `program` (a flow job) runs its steps in order, each in its own container on the job's
workspace volume. The engine owns everything a workflow job has (records, GPU claims, masked and stored
logs, stop, reconcile, events); the dialect owns its language: conditions, expressions between steps
(`steps.<id>.outputs`) and jobs (`jobs.<id>.outputs`), inputs, and what a step's outputs are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any, Protocol

from dtrun.structs import struct


@struct(frozen=True)
class StepCommand:
    """One step as it starts: its image (already built), command, environment and files to put in."""

    image: str
    command: list[str] | None
    entrypoint: list[str] | None
    env: dict[str, str]
    #: tar archives to put at `/` before the step starts (e.g. an action's folder, re-rooted)
    files: list[bytes] = field(default_factory=list)
    #: a file the step may write its outputs to; the engine hands its content back to the dialect
    output_file: str | None = None
    #: where an action or a command that names one reports (`run`, `./actions/x`, `docker://...`)
    describe: str = "run"


@struct(frozen=True)
class Reused:
    """A step the dialect settled without a container (e.g. DataTorch's action cache had its outputs):
    the engine reports `message` and tells the dialect the step succeeded."""

    message: str
    describe: str = "run"


class JobProgram(Protocol):
    #: the labels of the steps, in order (`1`, `fetch`, ...): the engine names containers and events by them
    steps: list[str]
    #: seconds the whole job may take (its steps are killed after), or None
    timeout: float | None

    def begin(self, run: str, upstream: Mapping[str, Mapping[str, Any]]) -> str | None:
        """Before the first step, with the outputs of the jobs this one needs: None to run, else why it
        is skipped (e.g. its `if` is false)."""

    def command(self, index: int, status: str) -> StepCommand | Reused | None:
        """Step `index` as it starts, given the job's status so far (`success`, `failure`); None when its
        condition says it does not run, `Reused` when it needs no container. Raises `DtrunError` for a
        step that cannot start (bad input)."""

    def line(self, index: int, text: str) -> None:
        """One line the step printed (already masked), for outputs reported on stdout."""

    def done(self, index: int, outcome: str, exit_code: int | None, message: str | None,
             output_file: str) -> None:
        """After the step: `success`, `failure` or `skipped`, and the content of its output file."""

    def finish(self, succeeded: bool) -> str | None:
        """After the last step: the job's outputs are computed; None if fine, else why the job failed."""

    def outputs(self) -> dict[str, Any]:
        """The job's outputs (`jobs.<id>.outputs` for the jobs that need it), JSON values."""

    def fingerprint(self) -> str | None:
        """After `begin`: a text that decides everything the job does (its resolved steps, their inputs
        and images, the upstream outputs it reads) when running it again with the same code would give
        the same outputs, so the engine may reuse an earlier result (the job cache); None when the job
        is not deterministic (it must run every time)."""

    def saved(self) -> dict[str, Any]:
        """After a successful job: what `restore` needs to give the same result again (JSON)."""

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Instead of running: the job's result is the one `saved` described (a job cache hit)."""
