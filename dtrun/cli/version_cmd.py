"""`dtrun --version`: the one option of the root command itself.

Typer keeps one callback per application, so this module owns it; a future global option belongs here
too rather than in a second callback (which would silently replace this one).
"""

from __future__ import annotations

from typing import Annotated

import typer

from dtrun.cli.app import app


def _print_version(value: bool) -> None:
    """Eager: runs before any command is looked up, so `dtrun --version` works in any folder."""
    if not value:
        return
    import platform

    from dtrun import __version__

    typer.echo(f"dtrun {__version__} (Python {platform.python_version()})")
    raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", help="Print dtrun's version and exit.",
                                          callback=_print_version, is_eager=True)] = False,
) -> None:
    """Run machine-learning workflows as containers on a local or remote Docker daemon."""
