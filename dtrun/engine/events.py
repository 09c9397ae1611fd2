"""What the engine reports, as data: the CLI renders events (rich on a terminal, plain lines without one),
tests and API users collect them. The engine itself never prints and never formats for a terminal.
"""

from __future__ import annotations

from collections.abc import Callable

from dtrun.structs import struct

#: Event kinds. `output` carries a chunk of a job's (masked) output in `data`; `build` one line of an
#: image build; `result` a job's final state in `state`; the others a sentence in `text`.
RUN, JOB, STATUS, BUILD, OUTPUT, RESULT, WARNING = "run", "job", "status", "build", "output", "result", "warning"
#: An image build's course, for a compact view (dtrun/engine/build_watch.py): `build-start` what is built
#: from what; `build-step` the title of the step that starts now; `build-done` the one-line summary
#: (`built dtrun/bash:… in 12.3 s (5 steps, 3 cached)`); `build-failed` (the error follows as usual).
BUILD_START, BUILD_STEP, BUILD_DONE, BUILD_FAILED = "build-start", "build-step", "build-done", "build-failed"
#: A transfer's progress (code upload, artifact export, dep materialisation): `text` names it, `done` and
#: `total` count bytes (`total` None when unknown); the last event of a transfer has `state` "done".
PROGRESS = "progress"


@struct(frozen=True)
class Event:
    kind: str
    text: str = ""
    #: the plan job it is about (a workflow, or a flow job), and for flows the step ("" for the flow job
    #: itself; None for anything that is not part of a flow)
    job: str | None = None
    step: str | None = None
    data: bytes = b""
    state: str | None = None
    done: int = 0
    total: int | None = None

    @property
    def prefix(self) -> str:
        """`job/step` as flows show it (`job` alone, or nothing for the run itself)."""
        if self.job and self.step:
            return f"{self.job}/{self.step}"
        return self.job or ""


Listener = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The default listener: nobody is watching (a detached run's output is in the store)."""
