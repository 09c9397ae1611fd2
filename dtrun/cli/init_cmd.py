"""`dtrun init`: start a project with a commented `.dtrun/workflows.yaml` a newcomer can run at once.

The file it writes is the shortest path from an empty repository to a first run: a bash workflow that
saves an artifact (`dtrun run hello`) and a JupyterLab dev environment (`dtrun run lab`). Its first line
wires the YAML language server to `.dtrun/workflows.schema.json`, written beside it, so editors check and
complete the file from the start. It never overwrites: a project that already has workflows is left as
it is.
"""

from __future__ import annotations

from pathlib import Path

from dtrun.cli.app import app

SCHEMA_NAME = "workflows.schema.json"

WORKFLOWS_YAML = f"""\
# yaml-language-server: $schema=./{SCHEMA_NAME}
#
# The workflows of this project. Each one runs in a container built for it; your code is copied in as it
# is on disk (uncommitted changes included) and the job's working directory is the project folder.
#   dtrun list               the workflows, with their help
#   dtrun validate           check this file (errors come with file:line:col)
#   dtrun run hello          run one; `dtrun status` and `dtrun logs RUN` show the runs
# Editors with the YAML language server check and complete this file with {SCHEMA_NAME}
# (refresh it after upgrading dtrun: dtrun schema > .dtrun/{SCHEMA_NAME}).

workflows:
  # A bash workflow: the commands run in one shell and stop at the first failure.
  - name: hello
    help: Say hello and save a file as an artifact
    provider: bash
    # python: 3.11                 # the Python version of the image
    # requirements: requirements.txt   # installed into the image (cached with it)
    env:
      - GREETING=Hello from dtrun
    commands:
      - echo "$GREETING"
      - mkdir -p output
      - date -u > output/hello.txt
    # Folders saved when the job ends (also when it fails or is stopped): `dtrun artifacts RUN` lists
    # them, and a workflow with `depends-on: [hello]` finds them mounted at the same path.
    artifacts:
      - output

  # A dev environment: JupyterLab serving the project folder; `dtrun run lab` prints where to open it
  # (with its access token). Stop it with Ctrl+C, or `dtrun stop RUN` when started with -d.
  - name: lab
    help: JupyterLab on this project
    provider: lab
    # resources:
    #   gpu: 1                     # needs the NVIDIA runtime on the Docker host
"""


@app.command()
def init() -> None:
    """Write a commented .dtrun/workflows.yaml (a bash workflow and a JupyterLab dev environment).

    Run it in the folder of your git repository that should be the project (usually its top). It
    refuses to overwrite anything: a project that already has workflow files is left as it is.
    """
    import typer

    target = write_starter(Path.cwd())
    typer.echo(f"wrote {target} and {target.parent / SCHEMA_NAME}")
    typer.echo("next: dtrun validate && dtrun run hello")


def write_starter(folder: Path) -> Path:
    """Write the starter workflows file (and its schema) into `folder/.dtrun/`; return the file's path."""
    from dtrun.code.listing import find_git_root
    from dtrun.errors import DtrunError, ProjectError
    from dtrun.spec.loader import workflow_files
    from dtrun.spec.project import Project

    folder = folder.resolve()
    git_root = find_git_root(folder)
    if git_root is None:
        raise ProjectError(f"{folder} is not inside a git repository",
                           hint="dtrun tracks your code with git: run `git init` first, then `dtrun init`")
    existing = workflow_files(Project(git_root=git_root, root=folder))
    if existing:
        shown = ", ".join(str(p.relative_to(folder)) for p in existing)
        raise DtrunError(f"this project already has workflows ({shown}); dtrun init does not overwrite them",
                         hint="edit the file, or move it away and run `dtrun init` again")
    spec_dir = folder / ".dtrun"
    spec_dir.mkdir(exist_ok=True)
    target = spec_dir / "workflows.yaml"
    schema = spec_dir / SCHEMA_NAME
    if not schema.exists():  # an existing schema file is the user's (or a newer dtrun's): keep it
        import json

        from dtrun.spec.schema import workflows_schema

        schema.write_text(json.dumps(workflows_schema(), indent=2) + "\n")
    with target.open("x") as out:  # "x": even a file created meanwhile is never overwritten
        out.write(WORKFLOWS_YAML)
    return target
