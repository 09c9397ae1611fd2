"""`dtrun secrets add|list|delete`: the repository's secrets, passed to jobs as environment variables.

A value is read from a prompt (hidden) or from stdin, never from the command line, where it would
land in shell history and in the process list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dtrun.cli.app import app

if TYPE_CHECKING:
    from dtrun.secrets import SecretStore

secrets_app = typer.Typer(help="Manage the repository's secrets (passed to jobs as environment variables).",
                          no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")


def _store() -> SecretStore:
    """The secrets of the repository the current folder is in."""
    from dtrun.cli.lifecycle import session
    from dtrun.secrets import SecretStore

    return SecretStore(session().store.repo)


@secrets_app.command("add")
def add(name: Annotated[str, typer.Argument(help="The environment variable name, e.g. WANDB_API_KEY.")]) -> None:
    """Add or replace a secret; the value is read from a hidden prompt or from stdin."""
    import sys

    from dtrun.secrets import check_name

    check_name(name)
    if sys.stdin.isatty():
        value = typer.prompt(f"value of {name}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read()
        if value.endswith("\n"):
            value = value[:-1]
        if value.endswith("\r"):
            value = value[:-1]
    replaced = _store().add(name, value)
    typer.echo(f"{'replaced' if replaced else 'added'} secret {name}")


@secrets_app.command("list")
def list_() -> None:
    """List the secrets' names (never their values)."""
    names = _store().names()
    typer.echo("\n".join(names) if names else "no secrets (add one with `dtrun secrets add NAME`)")


@secrets_app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="The secret to delete.")]) -> None:
    """Delete a secret."""
    _store().delete(name)
    typer.echo(f"deleted secret {name}")
