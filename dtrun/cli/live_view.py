"""The compact live view on a terminal: image builds as their current step, and transfers as bars.

A build shows one line for what is built, one for the step that runs now with its elapsed time, and
one condensed line of that step's latest output (pip's `Downloading …`, say), instead of BuildKit's
whole log; when it ends the renderer prints the one-line summary in its place. A transfer (code
upload, artifact export, dep materialisation) gets a bar with bytes and rate once it has taken more
than a second. Everything is drawn by one transient rich `Live` on stderr, only while something is
in progress; without a terminal the renderer never creates this view.
"""

from __future__ import annotations

import re
import time
from dataclasses import field
from typing import TYPE_CHECKING, Any

from dtrun.structs import struct

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

#: A BuildKit line: `#7 12.34 text` (vertex, seconds since the step started, text) or `#7 text`.
_LINE = re.compile(r"^#\d+ (?:\d+\.\d+ )?(.*)$")
#: Transfers quicker than this never show a bar.
SHOW_AFTER = 1.0


@struct
class _Build:
    header: str
    step: str = ""
    step_started: float = field(default_factory=time.monotonic)
    detail: str = ""
    log: list[str] = field(default_factory=list)


@struct
class _Transfer:
    done: int = 0
    total: int | None = None
    started: float = field(default_factory=time.monotonic)


class LiveView:
    """What is in progress now, keyed by job (builds) and by name (transfers)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.builds: dict[str, _Build] = {}
        self.transfers: dict[str, _Transfer] = {}
        self._live: Any = None

    # -- builds ----------------------------------------------------------------------------------------
    def build_start(self, key: str, header: str) -> None:
        self.builds[key] = _Build(header)
        self._refresh()

    def build_step(self, key: str, title: str) -> None:
        build = self.builds.get(key)
        if build is not None:
            build.step, build.step_started, build.detail = title, time.monotonic(), ""

    def build_line(self, key: str, line: str) -> bool:
        """Take one log line of the build of `key`; False when no build of it is in view (one that does
        not announce its start, e.g. a flow's image: the caller prints the line)."""
        build = self.builds.get(key)
        if build is None:
            return False
        build.log.append(line)
        match = _LINE.match(line)
        text = (match.group(1) if match else line).strip()
        if text and not text.startswith(("sha256:", "DONE ", "CACHED", "transferring ", "resolve ", "[")):
            build.detail = text
        return True

    def build_end(self, key: str) -> list[str]:
        """Forget the build (its lines leave the view); its full log, for a failure report."""
        build = self.builds.pop(key, None)
        self._refresh()
        return build.log if build else []

    # -- transfers -------------------------------------------------------------------------------------
    def progress(self, name: str, done: int, total: int | None, finished: bool) -> None:
        if finished:
            self.transfers.pop(name, None)
        else:
            transfer = self.transfers.setdefault(name, _Transfer())
            transfer.done, transfer.total = done, total
        self._refresh()

    def print(self, renderable: RenderableType) -> None:
        """Print above the live area (rich keeps the view at the bottom)."""
        self.console.print(renderable)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    # -- drawing ---------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        busy = bool(self.builds) or bool(self.transfers)
        if busy and self._live is None:
            from rich.live import Live

            self._live = Live(self, console=self.console, transient=True, refresh_per_second=8,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start()
        elif not busy:
            self.stop()
        elif self._live is not None:
            self._live.refresh()

    def __rich__(self) -> RenderableType:
        from rich.console import Group
        from rich.text import Text

        now = time.monotonic()
        width = max(20, self.console.width - 4)
        lines: list[RenderableType] = []
        for key, build in list(self.builds.items()):
            lines.append(Text.assemble((f"[{key}] " if key else "", "bold"), (_cut(build.header, width), "cyan")))
            if build.step:
                lines.append(Text.assemble("  ", (_cut(build.step, width - 12), "bold"),
                                           (f"  {now - build.step_started:.1f} s", "yellow")))
            if build.detail:
                lines.append(Text(f"    {_cut(build.detail, width - 4)}", style="dim"))
        for name, transfer in list(self.transfers.items()):
            if now - transfer.started >= SHOW_AFTER:
                lines.append(_bar(name, transfer, now, width))
        return Group(*lines)


def _bar(name: str, transfer: _Transfer, now: float, width: int) -> RenderableType:
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    from dtrun.engine.artifacts import human_size

    rate = transfer.done / max(now - transfer.started, 1e-6)
    amount = human_size(transfer.done) + (f" / {human_size(transfer.total)}" if transfer.total else "")
    row = Table.grid(padding=(0, 1))
    row.add_column(no_wrap=True)
    row.add_column(width=min(30, max(10, width // 4)))
    row.add_column(no_wrap=True)
    bar = ProgressBar(total=transfer.total or None, completed=transfer.done, pulse=transfer.total is None)
    row.add_row(_cut(name, width // 3), bar, f"{amount}  {human_size(int(rate))}/s")
    return row


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"
