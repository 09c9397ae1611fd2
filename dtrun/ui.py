"""Terminal output: rich on a terminal, plain lines without one (CI) or with NO_COLOR.

Job output goes to stdout untouched; everything dtrun says about the run goes to stderr, so
`dtrun run x > out.txt` captures exactly what the job printed.

Messages are written in rich's console markup (`[yellow]warning:[/yellow] ...`, dynamic parts through
`escape`). Without a terminal they are written here as the plain text rich would print for them
(`plain_text`), and rich is not imported at all: loading it costs ~12 ms, which a run in CI or behind a
pipe (and the overhead benchmark) would pay on its way to the job's container and again after it.
"""

from __future__ import annotations

import functools
import os
import re
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
    """A status line about the run (stderr); `message` is console markup."""
    if plain():
        write_plain(plain_text(message))
    else:
        console().print(message)


def warn(message: str) -> None:
    say(f"[yellow]warning:[/yellow] {message}")


def plain() -> bool:
    """Whether stderr is no terminal: rich would print it without colours or control sequences."""
    return not sys.stderr.isatty()


def write_plain(text: str) -> None:
    """One line of text, as is, on stderr."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


#: a `[` that opens a markup tag (a lower-case letter, `#`, `/` or `@` next), with the backslashes before it
_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")
#: the control characters rich's Text leaves out (bell, backspace, vertical tab, form feed, carriage return)
_CONTROL = dict.fromkeys((7, 8, 11, 12, 13))


def escape(text: str) -> str:
    """`text` shown literally in console markup, by rich's rule: every `[` that would open a tag gets a
    backslash before it (and the backslashes already there are doubled, so they stay text). The same as
    `rich.markup.escape`, without importing rich."""
    escaped = _TAG.sub(lambda m: m.group(1) * 2 + "\\" + m.group(2), text)
    if escaped.endswith("\\") and not escaped.endswith("\\\\"):
        escaped += "\\"  # a lone backslash at the end would escape what a caller appends
    return escaped


def plain_text(markup: str) -> str:
    """The text rich prints for console markup without colours: tags dropped; an escaped tag, and an
    escaped `[` anywhere, as text; the backslashes before a tag halved; the control characters rich drops
    left out, and tabs expanded to its 8 columns. The same as `rich.markup.render(...).plain` printed,
    without importing rich."""
    parts, position = [], 0
    for match in _TAG.finditer(markup):
        parts.append(markup[position:match.start()].replace("\\[", "["))
        backslashes, escaped = divmod(len(match.group(1)), 2)
        parts.append("\\" * backslashes + (match.group(2) if escaped else ""))
        position = match.end()
    parts.append(markup[position:].replace("\\[", "["))
    return "".join(parts).translate(_CONTROL).expandtabs(8)
