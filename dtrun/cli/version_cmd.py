"""`dtrun --version` and `dtrun --backend NAME`: the options of the root command itself.

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


def _choose_backend(value: str | None) -> str | None:
    """`dtrun --backend slurm run hello`: this command only, as `DTRUN_BACKEND` would (it wins over the
    config file); an unknown name is refused here, before any command runs."""
    if value is None:
        return None
    import os

    from dtrun.backends.registry import BACKENDS

    if value not in BACKENDS:
        raise typer.BadParameter(f"unknown backend '{value}' (backends: {', '.join(sorted(BACKENDS))})")
    os.environ["DTRUN_BACKEND"] = value
    return value


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", help="Print dtrun's version and exit.",
                                          callback=_print_version, is_eager=True)] = False,
    backend: Annotated[str | None, typer.Option("--backend", metavar="NAME", callback=_choose_backend,
                                                help="Where jobs run for this command: docker (the default), "
                                                "slurm; overrides `backend` in the config.")] = None,
) -> None:
    """Run machine-learning workflows as containers on a local or remote Docker daemon."""
