"""`dtrun tags`: list, add (from a run, or from local folders) and delete tags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dtrun.cli.app import app

tags_app = typer.Typer(help="List, add and delete tags (names for reusable artifacts).", no_args_is_help=False)
app.add_typer(tags_app, name="tags")


@tags_app.callback(invoke_without_command=True)
def show(ctx: typer.Context,
         repo: Annotated[str | None, typer.Option("--repo", help="List another repository's tags (owner/name).")]
         = None,
         as_json: Annotated[bool, typer.Option("--json", help="Print the tags as JSON (docs/json.md).")] = False,
         ) -> None:
    """List the tags: tag, run, workflow, artifacts, created."""
    if ctx.invoked_subcommand:
        return
    import time

    from dtrun.api import Session
    from dtrun.cli.artifacts_cmd import _rows
    from dtrun.ui import say

    tags = Session().tags(repo)
    if as_json:
        from dtrun.cli import json_out

        json_out.emit(json_out.tags(tags))
        return
    if not tags:
        say("no tags yet; `dtrun tags add TAG RUN` or `dtrun run WORKFLOW -t TAG` creates one")
        return
    now = time.time()
    _rows(["TAG", "RUN", "WORKFLOW", "ARTIFACTS", "CREATED"],
          [[t.name, t.run or "-", t.workflow or "(upload)", ", ".join(t.artifacts) or "-", _ago(now - t.created_at)]
           for t in tags], set())


@tags_app.command("add")
def add(
    tag: Annotated[str, typer.Argument(help="The new tag's name.", metavar="TAG")],
    run: Annotated[list[str] | None, typer.Argument(help="The run to tag (or, with -a, more local paths).",
                                                    metavar="[RUN]")] = None,
    artifact: Annotated[list[Path] | None, typer.Option("--artifact", "-a",
                                                        help="Upload this local folder as the tag's data.")]
    = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace a tag that exists.")] = False,
) -> None:
    """Tag a finished run (`tags add TAG RUN`) or upload local folders as a tag (`tags add TAG -a PATH...`)."""
    from dtrun.errors import DtrunError

    if artifact:
        upload_tag(tag, [*artifact, *(Path(p) for p in run or [])], replace=force)
        return
    if not run or len(run) != 1:
        raise DtrunError("name one run to tag, or local folders with -a",
                         hint="dtrun tags add TAG RUN  |  dtrun tags add TAG -a PATH...")
    from dtrun.api import Session
    from dtrun.ui import say

    record = Session().tag_run(tag, run[0], replace=force)
    say(f"tagged run {record.run} ({record.workflow}) as [bold]{tag}[/bold]: "
        f"{', '.join(record.artifacts) or 'no artifacts'}")


@tags_app.command("delete")
def delete(tag: Annotated[str, typer.Argument(help="The tag to delete.", metavar="TAG")]) -> None:
    """Delete a tag (its run and artifacts stay)."""
    from dtrun.api import Session
    from dtrun.ui import say

    Session().tag_delete(tag)
    say(f"deleted tag {tag}")


def upload_tag(tag: str, paths: list[Path], *, replace: bool = False) -> None:
    """Local folders -> a tag, each said as it is stored."""
    from dtrun.api import Session
    from dtrun.engine.artifacts import human_size
    from dtrun.ui import say

    record = Session().tag_upload(tag, paths, replace=replace, uploaded=lambda r: say(
        f"  uploaded {r.path}: {r.files} files, {human_size(r.size)}"))
    say(f"tag [bold]{tag}[/bold] holds {', '.join(record.artifacts)}; use it with `deps: [{{tag: {tag}}}]` "
        f"or `- :{tag}`")


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("day", 86400), ("hour", 3600), ("min", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n > 1 and unit != 'min' else ''} ago"
    return "now"
