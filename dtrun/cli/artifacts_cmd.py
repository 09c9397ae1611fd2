"""`dtrun artifacts RUN|JOB|TAG`: list, total or download saved outputs; `dtrun artifacts upload TAG PATH...`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dtrun.cli.app import app

if TYPE_CHECKING:
    from dtrun.api import Session
    from dtrun.engine.transfer import Found
    from dtrun.store import JobRecord


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def artifacts(
    items: Annotated[list[str], typer.Argument(
        help="RUN, JOB or TAG to list; or `upload TAG PATH...` to upload local folders as a tag.",
        metavar="RUN|JOB|TAG", show_default=False)],
    total: Annotated[bool, typer.Option("--total", "-t", help="Show the total size of each artifact.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Download the artifacts into DIR.",
                                                metavar="DIR")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the artifacts and their files as JSON "
                                          "(docs/json.md).")] = False,
) -> None:
    """List the files of a run's or job's artifacts with their sizes, or download them.

    `dtrun artifacts upload TAG PATH...` uploads local folders as the tag TAG instead.
    """
    from dtrun.api import Session
    from dtrun.errors import DtrunError

    if as_json and (items[0] == "upload" or output is not None):
        raise DtrunError("--json lists artifacts; it does not go with upload or --output",
                         hint="dtrun artifacts RUN --json")
    if items[0] == "upload":
        if len(items) < 3:
            raise DtrunError("usage: dtrun artifacts upload TAG PATH...",
                             hint="e.g. dtrun artifacts upload data ./data")
        from dtrun.cli.tags_cmd import upload_tag

        upload_tag(items[1], [Path(p) for p in items[2:]])
        return
    if len(items) > 1:
        raise DtrunError(f"expected one RUN, JOB or TAG, got {len(items)}: {' '.join(items)}")
    session = Session()
    found = session.artifact_files(items[0])
    if as_json:
        from dtrun.cli import json_out

        json_out.emit(json_out.artifacts(found))
    elif output is not None:
        _download(session, found, output)
    elif total:
        _print_totals(found)
    else:
        _print_files(found)


def _rows(header: list[str], rows: list[list[str]], right: set[int]) -> None:
    from rich.table import Table

    from dtrun.ui import console

    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for i, name in enumerate(header):
        table.add_column(name, justify="right" if i in right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console(stderr=False).print(table)


def _who(job: JobRecord) -> str:
    return job.workflow or "(upload)"


def _print_files(found: Found) -> None:
    from dtrun.engine.artifacts import human_size
    from dtrun.ui import say

    if not found:
        say("no artifacts saved")
        return
    rows = []
    for job, manifest in found:
        art = manifest["artifact"]
        for entry in manifest["files"]:
            if entry["type"] == "dir":
                continue
            name = f"{art['path'].rstrip('/')}/{entry['path']}"
            size = human_size(int(entry["size"])) if entry["type"] == "file" else f"-> {entry['target']}"
            rows.append([job.id, _who(job), name, size])
    _rows(["JOB", "WORKFLOW", "FILE", "SIZE"], rows, {3})


def _print_totals(found: Found) -> None:
    from dtrun.engine.artifacts import human_size
    from dtrun.ui import say

    if not found:
        say("no artifacts saved")
        return
    rows = [[job.id, _who(job), m["artifact"]["path"], str(m["artifact"]["files"]),
             human_size(int(m["artifact"]["size"]))] for job, m in found]
    _rows(["JOB", "WORKFLOW", "ARTIFACT", "FILES", "SIZE"], rows, {3, 4})


def _download(session: Session, found: Found, output: Path) -> None:
    """Every artifact into OUTPUT/<its path>, with a progress bar on a terminal."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from dtrun.ui import console, say

    total = sum(int(m["artifact"]["size"]) for _, m in found)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console(), transient=True, disable=not console().is_terminal) as progress:
        task = progress.add_task("downloading", total=total)
        session.download_artifacts(found, output,
                                   advance=lambda path, n: progress.update(task, description=path, advance=n))
    say(f"downloaded {len(found)} artifact{'s' if len(found) != 1 else ''} ({_size(total)}) into {output}")


def _size(n: int) -> str:
    from dtrun.engine.artifacts import human_size

    return human_size(n)
