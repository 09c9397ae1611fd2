"""Rendering the engine's events for people: rich on a terminal, plain lines without one (CI, pipes).

Job output goes to stdout untouched (a workflow job's bytes as they come; a flow step's lines as
`[job/step] line`; stderr when stdout is kept for a JSON summary); everything dtrun says about the
run goes to stderr, so `dtrun run x > out.txt` captures exactly what the job printed. Without a
terminal, or with NO_COLOR, there are no colours and no control sequences: an image build is its log,
line by line (`  | …`), then its summary.

On a terminal an image build is a compact live view (dtrun/cli/live_view.py: the step that runs, its
elapsed time, its latest output line) that collapses into one `built … in 12.3 s (5 steps, 3 cached)`
line; a failed build prints its whole log, and `verbose` (`dtrun run -v`) prints it as it comes.
Transfers that take over a second show a progress bar there.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, TextIO

from dtrun.engine.events import (
    BUILD,
    BUILD_DONE,
    BUILD_FAILED,
    BUILD_START,
    BUILD_STEP,
    JOB,
    OUTPUT,
    PROGRESS,
    RESULT,
    RUN,
    WARNING,
    Event,
)

if TYPE_CHECKING:
    from dtrun.cli.live_view import LiveView

_BUILD_KINDS = (BUILD, BUILD_START, BUILD_STEP, BUILD_DONE, BUILD_FAILED)
_STATE_STYLE = {"DONE": "green", "CACHED": "green", "FAILED": "red", "SKIPPED": "dim"}


def _colour(stream: object) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


class Renderer:
    """A listener for `Engine`/`Session` events."""

    def __init__(self, *, builds: bool = True, output: TextIO | None = None, verbose: bool = False) -> None:
        """`output`: where job output goes (stdout; stderr when stdout is kept for JSON, `--json`);
        `verbose`: a build's whole log as it comes, also on a terminal."""
        self.builds = builds
        self.lock = threading.Lock()
        self.output = output
        self.out_colour, self.err_colour = _colour(output or sys.stdout), _colour(sys.stderr)
        self.live: LiveView | None = None
        if self.err_colour and not verbose:
            from dtrun.cli.live_view import LiveView
            from dtrun.ui import console

            self.live = LiveView(console())

    def __call__(self, event: Event) -> None:
        with self.lock:
            if event.kind == OUTPUT:
                self._output(event)
            elif event.kind in _BUILD_KINDS:
                if self.builds:
                    self._build(event)
            elif event.kind == PROGRESS:
                if self.live is not None:
                    self.live.progress(event.text, event.done, event.total, event.state == "done")
            elif event.step is not None:  # a flow job's (step "") or step's status
                self._tagged(event)
            elif event.kind == WARNING:
                self._say(f"warning: {event.text}", "yellow")
            else:
                self._say(event.text, self._style(event))

    def _build(self, event: Event) -> None:
        """Plain: every line, then the summary. Live: the view, then the summary (or the log on failure)."""
        key = event.job or ""
        if self.live is None:
            if event.kind in (BUILD, BUILD_START):
                self._say(f"  | {event.text}", "dim")
            elif event.kind == BUILD_DONE:
                self._say(f"  {event.text}", None)
            return
        if event.kind == BUILD_START:
            self.live.build_start(key, event.text)
        elif event.kind == BUILD_STEP:
            self.live.build_step(key, event.text)
        elif event.kind == BUILD:
            if not self.live.build_line(key, event.text):
                self._say(f"  | {event.text}", "dim")
        elif event.kind == BUILD_DONE:
            self.live.build_end(key)
            self._say(f"  {event.text}", "green")
        elif event.kind == BUILD_FAILED:
            log = self.live.build_end(key)
            if event.state != "interrupted":
                for line in log:
                    self._say(f"  | {line}", "dim")

    def close(self) -> None:
        """Take down the live view (a run that ended, or was interrupted, while something was in progress)."""
        with self.lock:
            if self.live is not None:
                self.live.stop()

    def _style(self, event: Event) -> str | None:
        if event.kind == RESULT:
            return _STATE_STYLE.get(event.state or "", "yellow")
        if event.kind == JOB:
            return "bold cyan"
        if event.kind == RUN:
            return "bold"
        return "yellow" if event.kind == WARNING else None

    def _output(self, event: Event) -> None:
        out = self.output or sys.stdout
        if event.step is None:  # a workflow job: its bytes, untouched
            out.buffer.write(event.data)
            out.buffer.flush()
            return
        text = event.data.decode("utf-8", "replace").rstrip("\n")
        tag = f"\x1b[36m[{event.prefix}]\x1b[0m " if self.out_colour else f"[{event.prefix}] "
        out.write(f"{tag}{text}\n")
        out.flush()

    def _tagged(self, event: Event) -> None:
        """A flow job's or step's status: `[job/step] message` on stderr."""
        message, prefix = event.text, event.prefix
        if self.err_colour:
            code = "31" if message.startswith("failed") else "32" if message in ("done", "success") else "2"
            tag = f"\x1b[1m[{prefix}]\x1b[0m " if prefix else ""
            sys.stderr.write(f"{tag}\x1b[{code}m{message}\x1b[0m\n")
        else:
            sys.stderr.write(f"[{prefix}] {message}\n" if prefix else f"{message}\n")
        sys.stderr.flush()

    def _say(self, text: str, style: str | None) -> None:
        from dtrun.ui import console, escape, plain, plain_text, write_plain

        if plain():  # what rich would print, without loading it (dtrun/ui.py)
            write_plain(plain_text(escape(text)))
        else:
            console().print(f"[{style}]{escape(text)}[/{style}]" if style else escape(text))
