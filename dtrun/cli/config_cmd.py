"""`dtrun config`: show and change user settings (the store URL, base images, the Docker host, ...)."""

from __future__ import annotations

from typing import Annotated

import typer

from dtrun.cli.app import app

config_app = typer.Typer(help="Show and change dtrun's settings.", no_args_is_help=False)
app.add_typer(config_app, name="config")


@config_app.callback(invoke_without_command=True)
def show(ctx: typer.Context) -> None:
    """List the settings in effect and where each comes from."""
    if ctx.invoked_subcommand:
        return
    import os

    from dtrun.config import KEYS, config_file, load_settings, read_file_settings

    settings = load_settings()
    in_file = read_file_settings()
    for key, meaning in KEYS.items():
        value = getattr(settings, key)
        source = ("env" if os.environ.get(f"DTRUN_{key.upper()}") else
                  "file" if key in in_file else "default")
        typer.echo(f"{key:15} {value if value is not None else '-':50} ({source})  # {meaning}")
    typer.echo(f"\nfile: {config_file()}")


@config_app.command("get")
def get(key: Annotated[str, typer.Argument(help="Setting name.")]) -> None:
    """Print one setting's value."""
    from dtrun.config import KEYS, load_settings
    from dtrun.errors import DtrunError

    if key not in KEYS:
        raise DtrunError(f"unknown setting '{key}'", hint=f"settings: {', '.join(KEYS)}")
    value = getattr(load_settings(), key)
    typer.echo("" if value is None else value)


@config_app.command("set")
def set_(key: Annotated[str, typer.Argument(help="Setting name.")],
         value: Annotated[str, typer.Argument(help="New value.")]) -> None:
    """Change a setting in the config file."""
    from dtrun.config import write_file_setting

    write_file_setting(key, value)
    typer.echo(f"{key} = {value}")


@config_app.command("unset")
def unset(key: Annotated[str, typer.Argument(help="Setting name.")]) -> None:
    """Remove a setting from the config file (its default applies again)."""
    from dtrun.config import write_file_setting

    write_file_setting(key, None)
    typer.echo(f"{key} unset")
