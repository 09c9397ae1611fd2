"""The `dtrun` command. Each command group lives in its own `*_cmd.py` module and registers itself on
`app` when imported; adding a command is adding a module.

Errors the user can fix (`DtrunError`) are printed as one clear message with a hint and exit non-zero;
no traceback reaches the user for them.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from dtrun.cli.app import app

__all__ = ["app", "main"]

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_cmd")):
    importlib.import_module(f"{__name__}.{_module}")


def main(argv: list[str] | None = None) -> None:
    from dtrun.errors import DtrunError

    aborts, click_errors = _click_exceptions()
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv if argv is not None else sys.argv[1:], prog_name="dtrun",
                            standalone_mode=False)
    except DtrunError as exc:
        _print_error(exc)
        sys.exit(exc.exit_code)
    except aborts:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except click_errors as exc:
        exc.show()  # type: ignore[attr-defined]
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _click_exceptions() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """Abort and ClickException as typer raises them: typer >= 0.29 vendors its own click (typer._click)."""
    import click

    aborts: list[type[Exception]] = [click.exceptions.Abort, typer.Abort]
    errors: list[type[Exception]] = [click.ClickException]
    vendored = sys.modules.get("typer._click.exceptions")
    if vendored is not None:
        errors.append(vendored.ClickException)
    return tuple(aborts), tuple(errors)


def _print_error(exc: Exception) -> None:
    from rich.markup import escape

    from dtrun.ui import console

    errors = getattr(exc, "errors", None) or [exc]
    for error in errors:
        position = getattr(error, "position", None)
        where = f"{position}: " if position else ""
        console().print(f"[bold red]error:[/bold red] {escape(where + error.message)}")
        hint = getattr(error, "hint", None)
        if hint:
            console().print(f"  [dim]hint:[/dim] {escape(hint)}")
