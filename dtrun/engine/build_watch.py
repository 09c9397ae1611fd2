"""Follows an image build for the events a person wants: which step runs, and a one-line summary.

The builder's raw lines still go out as `build` events (the full log: plain output, `-v`, failures);
this adds `build-step` when a step starts and, at the end, `build-done` with the elapsed time and how
many steps ran and how many BuildKit (or the legacy builder) took from its cache, so a terminal can
collapse a build to `built dtrun/bash:… in 12.3 s (5 steps, 3 cached)`.
"""

from __future__ import annotations

import re
import time

from dtrun.engine.events import BUILD, BUILD_DONE, BUILD_FAILED, BUILD_START, BUILD_STEP, Event, Listener

_VERTEX = re.compile(r"^#(\d+) (.*)$")
_STEP = re.compile(r"^\[(?:[\w.-]+ )?\d+/\d+\] ")  # BuildKit: `[3/5] RUN ...`, `[stage 2/4] COPY ...`
_LEGACY_STEP = re.compile(r"^Step \d+/\d+ : ")


class BuildWatch:
    """One build's listener-facing side; hand `line`, `step` and `start` to the image manager."""

    def __init__(self, emit: Listener, job: str | None = None) -> None:
        self.emit = emit
        self.job = job
        self.started = time.monotonic()
        self.steps: set[str] = set()
        self.cached: set[str] = set()
        self._legacy = 0

    def start(self, text: str) -> None:
        self.started = time.monotonic()
        self.emit(Event(BUILD_START, text, job=self.job))

    def step(self, title: str) -> None:
        self.emit(Event(BUILD_STEP, title, job=self.job))

    def line(self, text: str) -> None:
        match = _VERTEX.match(text)
        if match:
            vertex, rest = match.groups()
            if _STEP.match(rest):
                self.steps.add(vertex)
            elif rest == "CACHED":
                self.cached.add(vertex)
        elif _LEGACY_STEP.match(text):
            self._legacy += 1
            self.steps.add(f"legacy-{self._legacy}")
        elif text.strip() == "---> Using cache" and self._legacy:
            self.cached.add(f"legacy-{self._legacy}")
        self.emit(Event(BUILD, text, job=self.job))

    def summary(self, image: str) -> str:
        seconds = time.monotonic() - self.started
        steps, cached = len(self.steps), len(self.cached & self.steps)
        return f"built {image} in {seconds:.1f} s ({steps} step{'s' if steps != 1 else ''}, {cached} cached)"

    def done(self, image: str) -> None:
        self.emit(Event(BUILD_DONE, self.summary(image), job=self.job))

    def failed(self, why: str, *, interrupted: bool = False) -> None:
        """The build did not finish: failed (its log is worth showing) or `interrupted` (Ctrl-C)."""
        self.emit(Event(BUILD_FAILED, why, job=self.job, state="interrupted" if interrupted else "failed"))
