"""The typer application object, shared by the command modules."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="dtrun",
    help="Run machine-learning workflows as containers on a local or remote Docker daemon.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (issue 18; README "Install")
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
