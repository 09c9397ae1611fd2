"""Terminal output: rich on a terminal, plain lines without one (CI) or with NO_COLOR.

Job output goes to stdout untouched; everything dtrun says about the run goes to stderr, so
`dtrun run x > out.txt` captures exactly what the job printed.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


@functools.lru_cache(maxsize=2)
def console(stderr: bool = True) -> Console:
    from rich.console import Console

    plain = not (sys.stderr if stderr else sys.stdout).isatty()
    return Console(stderr=stderr, no_color=plain or "NO_COLOR" in os.environ, highlight=False,
                   soft_wrap=True, emoji=False)


def say(message: str) -> None:
    """A status line about the run (stderr)."""
    console().print(message)


def warn(message: str) -> None:
    console().print(f"[yellow]warning:[/yellow] {message}")
