"""`dtrun action init|build|publish`: for authors of flow actions.

`build` bakes the action's folder and its manifest (as the `dev.dtrun.action` label) into an image, so
a flow that names the published image (`docker://registry/name:tag`) runs it exactly as it runs the
folder, with its inputs type-checked against the manifest.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dtrun.cli.app import app

if TYPE_CHECKING:
    from dtrun.backends.docker import DockerBackend

action_app = typer.Typer(help="Write, build and publish flow actions.", no_args_is_help=True)
app.add_typer(action_app, name="action")

PathArg = Annotated[Path, typer.Argument(help="The action's folder (holding action-datatorch.yaml).")]
HostOpt = Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint, e.g. ssh://me@gpu-box.")]

_SCAFFOLD: dict[str, dict[str, str]] = {
    "shell": {
        "action-datatorch.yaml": """\
name: {name}
description: What this action does.
inputs:
  greeting:
    type: string
    default: hello
    description: an example input; it reaches the command as $INPUT_GREETING
outputs:
  message:
    description: an example output (written to $DTRUN_OUTPUT)
runs:
  using: shell
  script: run.sh
""",
        "run.sh": """\
#!/bin/sh
# Inputs arrive as INPUT_<NAME> variables; outputs are key=value lines appended to $DTRUN_OUTPUT.
set -eu
echo "$INPUT_GREETING from {name}"
echo "message=$INPUT_GREETING" >> "$DTRUN_OUTPUT"
""",
    },
    "python": {
        "action-datatorch.yaml": """\
name: {name}
description: What this action does.
inputs:
  count:
    type: integer
    default: 3
    description: an example input (datatorch.get_inputs()["count"], or $INPUT_COUNT)
outputs:
  total:
    type: integer
    description: an example output (datatorch.set_output)
runs:
  using: python
  main: main.py
""",
        "main.py": """\
\"\"\"Written as DataTorch's actions are: the SDK reads the inputs (JSON, the last argument) and prints
each output as a `::name::<json>` line, which keeps its type (a number stays a number).\"\"\"

import datatorch

if __name__ == "__main__":
    inputs = datatorch.get_inputs()
    count: int = inputs["count"]
    total = sum(range(count))
    print(f"{name}: sum of range({{count}}) = {{total}}")
    datatorch.set_output("total", total)
""",
    },
    "docker": {
        "action-datatorch.yaml": """\
name: {name}
description: What this action does.
inputs:
  greeting:
    type: string
    default: hello
runs:
  using: docker
  dockerfile: Dockerfile
""",
        "Dockerfile": """\
FROM {base}
COPY entrypoint.sh /entrypoint.sh
ENTRYPOINT ["sh", "/entrypoint.sh"]
""",
        "entrypoint.sh": """\
#!/bin/sh
set -eu
echo "$INPUT_GREETING from {name}"
""",
    },
}


@action_app.command("init")
def init(
    path: Annotated[Path, typer.Argument(help="Folder to create the action in.")] = Path("."),
    kind: Annotated[str, typer.Option("--kind", "-k", help="shell, python or docker.")] = "shell",
    name: Annotated[str | None, typer.Option("--name", help="The action's name (default: the folder's).")]
    = None,
) -> None:
    """Scaffold an action: action-datatorch.yaml and a script to start from."""
    from dtrun.config import load_settings
    from dtrun.errors import DtrunError
    from dtrun.flows.process import default_image

    if kind not in _SCAFFOLD:
        raise DtrunError(f"unknown action kind '{kind}'", hint=f"kinds: {', '.join(_SCAFFOLD)}")
    if (path / "action-datatorch.yaml").exists():
        raise DtrunError(f"{path / 'action-datatorch.yaml'} already exists", hint="pick another folder")
    action_name = name or path.resolve().name
    path.mkdir(parents=True, exist_ok=True)
    for file, text in _SCAFFOLD[kind].items():
        target = path / file
        target.write_text(text.format(name=action_name, base=default_image(load_settings())))
        if file.endswith(".sh"):
            target.chmod(0o755)
        typer.echo(f"wrote {target}")


def _build(path: Path, host: str | None) -> tuple[DockerBackend, str]:
    from dtrun.api import Session
    from dtrun.flows.actions import ActionRef, resolve
    from dtrun.flows.process import build_image

    session = Session(host=host)
    settings = session.settings
    client = session.docker()
    action = resolve(ActionRef(str(path), folder=path.resolve()))

    def output(line: str) -> None:
        sys.stderr.write(f"  | {line}\n")

    tag, _ = build_image(client, action, settings, output=output, force_bake=True)
    return client, tag


@action_app.command("build")
def build(
    path: PathArg = Path("."),
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Also tag the image as this reference.")] = None,
    host: HostOpt = None,
) -> None:
    """Build the action's image (its folder and manifest baked in) and print its reference."""
    client, image = _build(path, host)
    if tag:
        client.tag_image(image, tag)
        image = tag
    typer.echo(image)


@action_app.command("publish")
def publish(
    ref: Annotated[str, typer.Argument(help="Where to push: REGISTRY/NAME:TAG.")],
    path: PathArg = Path("."),
    username: Annotated[str | None, typer.Option("--username", "-u", help="Registry user; the password is "
                                                 "read from stdin. Default: Docker's config.")] = None,
    host: HostOpt = None,
) -> None:
    """Build the action's image and push it; flows then use it as `docker://REGISTRY/NAME:TAG`."""
    from dtrun.errors import DtrunError

    if "/" not in ref:
        raise DtrunError(f"'{ref}' names no registry", hint="use REGISTRY/NAME:TAG, e.g. 127.0.0.1:5000/hello:v1")
    auth = None
    if username is not None:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise DtrunError("--username needs a password on stdin",
                             hint="e.g. `printf %s \"$TOKEN\" | dtrun action publish REF --username me`")
        auth = {"username": username, "password": password}
    client, image = _build(path, host)
    repository, tag = client.tag_image(image, ref)
    sys.stderr.write(f"pushing {repository}:{tag}\n")
    client.push_image(repository, tag, auth)
    typer.echo(f"docker://{repository}:{tag}")


@action_app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="An action folder, or a reference as a flow writes it "
                                       "(owner/repo@tag, datatorch/name@tag, dtrun/shell, ./path).")] = ".",
) -> None:
    """What an action takes and gives: its inputs (type, default, options, multiline, deprecation), outputs and
    the environment variables it reads, as its manifest declares them."""
    from dtrun.config import load_settings
    from dtrun.flows.actions import parse_ref, resolve

    target = ref if Path(ref).is_dir() and not ref.startswith(("./", "../", "/")) and "@" not in ref else None
    parsed = parse_ref(f"./{target}" if target else ref, base_dir=Path.cwd(), settings=load_settings())
    action = resolve(parsed)
    manifest = action.manifest
    assert manifest is not None  # folders and git repositories always have one
    for line in describe(manifest):
        typer.echo(line)


def describe(manifest: Any) -> list[str]:
    """The manifest as lines for a terminal (kept apart from `show` so that tests can read it)."""
    lines = [f"{manifest.name}" + (f" by {manifest.author}" if manifest.author else "")
             + f" (runs.using: {manifest.runs.using}" + (", cached" if manifest.cache else "") + ")"]
    if manifest.description:
        lines.append(f"  {manifest.description.strip()}")
    if manifest.inputs:
        lines.append("inputs:")
    for name, spec in manifest.inputs.items():
        facts = [spec.type + (", multiline" if spec.multiline else "")]
        if spec.required:
            facts.append("required")
        if spec.default is not None:
            facts.append(f"default {spec.default!r}")
        if spec.options:
            facts.append("one of " + ", ".join(repr(o) for o in spec.options))
        lines.append(f"  {name} ({'; '.join(facts)})" + (f": {spec.description.strip()}" if spec.description else ""))
        if spec.deprecation_message:
            lines.append(f"    deprecated: {spec.deprecation_message}")
    if manifest.outputs:
        lines.append("outputs:")
    for name, out in manifest.outputs.items():
        lines.append(f"  {name} ({out.type or 'text'})" + (f": {out.description}" if out.description else ""))
    if manifest.env:
        lines.append("reads from --secret or the host's environment:")
    for name, env in manifest.env.items():
        lines.append(f"  {name}" + (f": {env.description}" if env.description else ""))
    return lines
