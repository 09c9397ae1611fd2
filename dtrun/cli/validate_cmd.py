"""`dtrun validate`: check every workflow and variables file and report all errors at once."""

from __future__ import annotations

import typer

from dtrun.cli.app import app


@app.command()
def validate() -> None:
    """Check the workflow and variables files; print every error; exit 1 if there is any."""
    from dtrun.errors import DtrunError
    from dtrun.spec import find_project, load_spec
    from dtrun.spec.loader import workflow_files
    from dtrun.spec.variables import variable_files

    try:
        project = find_project()
        spec = load_spec(project)
    except DtrunError as exc:
        errors = getattr(exc, "errors", None) or [exc]
        for error in errors:
            where = f"{error.position}: " if error.position else ""
            typer.echo(f"{where}error: {error.message}", err=True)
            if error.hint:
                typer.echo(f"  hint: {error.hint}", err=True)
        typer.echo(f"{len(errors)} error{'s' if len(errors) != 1 else ''}", err=True)
        raise typer.Exit(1) from None
    files = [*workflow_files(project), *variable_files(project)]
    shown = ", ".join(str(f.relative_to(project.root)) for f in files)
    count = len(spec.workflows)
    typer.echo(f"ok: {count} workflow{'s' if count != 1 else ''} in {shown}")
    for warning in spec.warnings:  # properties accepted without their meaning here (issue 12)
        typer.echo(f"warning: {warning}", err=True)
