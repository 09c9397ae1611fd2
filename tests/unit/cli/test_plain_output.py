"""Plain output without rich (dtrun/ui.py): what rich itself prints for the same markup, checked against
rich on the cases that matter and on random strings of the characters markup is made of."""

from __future__ import annotations

import io
import random
import subprocess
import sys

from rich.console import Console
from rich.markup import escape as rich_escape

from dtrun.ui import escape, plain_text

CASES = ["plain", "[bold]x[/bold]", "a \\[bold] b", "\\\\[bold]x", "\\\\\\[bold]x", "ends\\", "ends\\\\",
         "[yellow]warning:[/yellow] a [b] c", "[link=http://a]t[/link]", "a\rb\x07c\td", "[#ff0000]r[/]",
         "[A] upper", "[1] digit", "arr[0]", "[[bold]]", "an unclosed [tag", "x \\[ y", "\\", "",
         "error: the base image 'not a valid ref!' is not a valid image reference (invalid reference format)"]


def rich_prints(markup: str) -> str:
    """What `dtrun.ui.console()` prints for `markup` where stderr is no terminal, less the newline."""
    buffer = io.StringIO()
    Console(file=buffer, no_color=True, highlight=False, soft_wrap=True, emoji=False).print(markup)
    return buffer.getvalue()[:-1]


def strings() -> list[str]:
    pick = random.Random(19)
    alphabet = ["[", "]", "\\", "a", "b", "/", "#", "@", " ", "=", "A", "1", "\r", "\t", "\n"]
    return CASES + ["".join(pick.choice(alphabet) for _ in range(pick.randint(0, 10))) for _ in range(3000)]


def test_escape_is_riches() -> None:
    assert [escape(s) for s in strings()] == [rich_escape(s) for s in strings()]


def test_plain_text_is_what_rich_prints() -> None:
    for markup in [*strings(), *map(escape, strings())]:
        try:
            expected = rich_prints(markup)
        except Exception:  # markup rich refuses (a closing tag with nothing open): plain output prints it
            continue
        assert plain_text(markup) == expected, markup


def test_a_run_without_a_terminal_does_not_load_rich() -> None:
    """The modules a plain run loads: the CLI, the run command's path and its error printing, none of rich."""
    code = ("import sys; from dtrun.cli import render, run_cmd; from dtrun.cli import _print_error; "
            "from dtrun.errors import DtrunError; from dtrun.engine.events import Event, RESULT; "
            "render.Renderer()(Event(RESULT, 'DONE hello', state='DONE')); _print_error(DtrunError('x', hint='y')); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out
    assert out.stderr == "DONE hello\nerror: x\n  hint: y\n"
