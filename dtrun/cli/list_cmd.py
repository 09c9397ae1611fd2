"""`dtrun list`: the workflows of the project here, with what each does."""

from __future__ import annotations

import typer

from dtrun.cli.app import app


@app.command("list")
def list_() -> None:
    """List the workflows (from any folder of the repository) with their provider and help."""
    from dtrun.api import Session

    spec = Session().spec(strict=False)  # issue 12: a broken file does not hide the others
    for warning in spec.warnings:
        if warning.workflow is None:  # one line per broken file
            typer.echo(f"warning: {warning}", err=True)
    rows = [("WORKFLOW", "PROVIDER", "DEPENDS ON", "HELP")]
    for name, workflow in spec.workflows.items():
        summary = (workflow.help or "").strip().split("\n", 1)[0]
        rows.append((name, workflow.provider, ", ".join(str(d) for d in workflow.depends_on), summary))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        typer.echo("  ".join([*cells, row[3].strip()]).rstrip())
