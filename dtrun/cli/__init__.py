"""The `dtrun` command. Each command group lives in its own `*_cmd.py` module and registers itself on
`app` when imported; adding a command is adding a module.

Errors the user can fix (`DtrunError`) are printed as one clear message with a hint and exit non-zero;
no traceback reaches the user for them.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any, NoReturn

import typer

from dtrun.cli.app import app

__all__ = ["app", "entry", "main"]

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_cmd")):
    importlib.import_module(f"{__name__}.{_module}")


def _click_exceptions() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(usage errors, aborts) of the click that typer uses: the copy newer typer releases vendor, else the
    click package (older typer; then importing it costs nothing more)."""
    try:
        exceptions: Any = importlib.import_module("typer._click.exceptions")
    except ImportError:
        exceptions = importlib.import_module("click.exceptions")
    candidates = [getattr(exceptions, "Abort", None), getattr(typer, "Abort", None)]
    aborts = tuple({a for a in candidates if isinstance(a, type) and issubclass(a, BaseException)})
    return (exceptions.ClickException,), aborts


def main(argv: list[str] | None = None) -> None:
    from dtrun.errors import DtrunError

    usage_errors, aborts = _click_exceptions()
    args = argv if argv is not None else sys.argv[1:]
    command = _command_tree(args)
    try:
        code = command.main(args=args, prog_name="dtrun", standalone_mode=False)
    except DtrunError as exc:
        _print_error(exc)
        sys.exit(exc.exit_code)
    except aborts:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except usage_errors as exc:
        exc.show()  # type: ignore[attr-defined]
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _command_tree(args: list[str]) -> Any:
    """The click command typer builds for `app`, with only the command `args` invoke in it.

    Building every command means reading every command's signature and type hints, about 20 ms, on
    every invocation. The global options and callback stay; `dtrun --help`, an unknown command and
    shell completion get the whole tree."""
    import copy
    import os

    if any(key.startswith("_DTRUN_COMPLETE") for key in os.environ):
        return typer.main.get_command(app)
    commands = {info.name or typer.main.get_command_name(info.callback.__name__): info
                for info in app.registered_commands if info.callback is not None}
    groups = {info.name: info for info in app.registered_groups if info.name}
    only = copy.copy(app)
    only.registered_commands, only.registered_groups = [], []
    bare = typer.main.get_command(only)  # the global options alone: which of them take a value
    valued = {opt for param in bare.params if not getattr(param, "is_flag", True) for opt in param.opts}
    invoked, skip = None, False
    for arg in args:
        if skip:
            skip = False
        elif arg in valued:
            skip = True  # `--backend NAME`: NAME is the option's, not a command
        elif not arg.startswith("-"):
            invoked = arg
            break
    if invoked not in commands and invoked not in groups:
        return typer.main.get_command(app)
    only.registered_commands = [commands[invoked]] if invoked in commands else []
    only.registered_groups = [groups[invoked]] if invoked in groups else []
    return typer.main.get_command(only)


def entry() -> NoReturn:
    """The `dtrun` command itself (the console script, `python -m dtrun`): `main`, then a quick exit.

    `main` ends with `SystemExit`, as a function others may call in their own process expects; only the
    command's own process skips the interpreter's teardown (`_finish`)."""
    try:
        main()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            _finish(exc.code or 0)
        raise
    _finish(0)


def _finish(code: int) -> NoReturn:
    """Exit now, without tearing the interpreter down.

    A run imports some 800 modules; freeing them one by one at exit costs tens of milliseconds, a good
    part of a cache hit, for nothing the user sees. The exit handlers still run (temporary files and
    folders, logging), and stdout and stderr are flushed. Where a thread that is not a daemon is still
    working, or a profiler or debugger watches, the normal exit is used instead.
    """
    import atexit
    import contextlib
    import os
    import threading

    working = any(t is not threading.main_thread() and not t.daemon and t.is_alive() for t in threading.enumerate())
    # a profiler or debugger (`python -m cProfile -m dtrun ...`) writes its results after the program ends
    watched = sys.getprofile() is not None or sys.gettrace() is not None
    if working or watched:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # a closed pipe (`dtrun status | head`), or a stream already closed
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _print_error(exc: Exception) -> None:
    from dtrun.ui import escape, say

    errors = getattr(exc, "errors", None) or [exc]
    for error in errors:
        position = getattr(error, "position", None)
        where = f"{position}: " if position else ""
        say(f"[bold red]error:[/bold red] {escape(where + error.message)}")
        hint = getattr(error, "hint", None)
        if hint:
            say(f"  [dim]hint:[/dim] {escape(hint)}")
