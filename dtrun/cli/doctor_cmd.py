"""`dtrun doctor`: one line per thing a run needs, with the fix; non-zero exit when something needed fails."""

from __future__ import annotations

from typing import Annotated

import typer

from dtrun.cli.app import app


@app.command()
def doctor(
    host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint to check (default: the one "
                                             "dtrun uses: config, DOCKER_HOST, the context, the socket).")] = None,
    registry: Annotated[str | None, typer.Option("--registry", metavar="HOST:PORT",
                                                 help="Also check that this image registry answers.")] = None,
) -> None:
    """Check the backend (Docker: endpoint, BuildKit, base image, GPUs, ssh tunnel), the store and a registry.

    Exits 1 when something every run needs is missing (a FAIL line); `warn` lines concern only some
    workflows (GPUs) or speed.
    """
    from dtrun.config import load_settings
    from dtrun.doctor import run_checks

    checks = run_checks(load_settings(), host, registry=registry)
    width = max(len(c.name) for c in checks)
    for check in checks:
        line = f"{check.status:<4}  {check.name:<{width}}  {check.message}"
        if check.fix and check.status != "ok":
            line += f"  fix: {check.fix}"
        typer.echo(line)
    failed = [c.name for c in checks if c.status == "FAIL"]
    if failed:
        typer.echo(f"{len(failed)} problem{'s' if len(failed) != 1 else ''}: {', '.join(failed)}", err=True)
        raise typer.Exit(1)
