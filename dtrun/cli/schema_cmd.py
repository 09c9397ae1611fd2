"""`dtrun schema`: the JSON Schema of the workflow file, for editors with the YAML language server."""

from __future__ import annotations

from typing import Annotated

import typer

from dtrun.cli.app import app


@app.command()
def schema(
    kind: Annotated[str, typer.Argument(help="workflows (the default) or variables.", metavar="[workflows|variables]")]
    = "workflows",
) -> None:
    """Print the JSON Schema of the workflows file (or of variables.yaml).

    Save it and point your editor at it, e.g. with the first line
    `# yaml-language-server: $schema=./workflows.schema.json` in .dtrun/workflows.yaml.
    """
    import json

    from dtrun.errors import DtrunError
    from dtrun.spec.schema import variables_schema, workflows_schema

    makers = {"workflows": workflows_schema, "variables": variables_schema}
    if kind not in makers:
        raise DtrunError(f"no schema named '{kind}'", hint="dtrun schema [workflows|variables]")
    typer.echo(json.dumps(makers[kind](), indent=2))
