"""`dtrun artifacts RUN|JOB|TAG`: list, total or download saved outputs; `dtrun artifacts upload TAG PATH...`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dtrun.cli.app import app

if TYPE_CHECKING:
    from dtrun.cli.context import Context
    from dtrun.store import JobRecord, Store


def open_store() -> tuple[Context, Store]:
    """The store of the repository the current folder belongs to."""
    from dtrun.cli.context import Context
    from dtrun.snapshot import take_snapshot

    context = Context.here()
    snapshot = take_snapshot(context.project.root, context.project.git_root)
    return context, context.store(snapshot.repo_id)


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def artifacts(
    items: Annotated[list[str], typer.Argument(
        help="RUN, JOB or TAG to list; or `upload TAG PATH...` to upload local folders as a tag.",
        metavar="RUN|JOB|TAG", show_default=False)],
    total: Annotated[bool, typer.Option("--total", "-t", help="Show the total size of each artifact.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Download the artifacts into DIR.",
                                                metavar="DIR")] = None,
) -> None:
    """List the files of a run's or job's artifacts with their sizes, or download them.

    `dtrun artifacts upload TAG PATH...` uploads local folders as the tag TAG instead.
    """
    from dtrun.errors import DtrunError

    if items[0] == "upload":
        if len(items) < 3:
            raise DtrunError("usage: dtrun artifacts upload TAG PATH...",
                             hint="e.g. dtrun artifacts upload data ./data")
        from dtrun.cli.tags_cmd import upload_tag

        upload_tag(items[1], [Path(p) for p in items[2:]])
        return
    if len(items) > 1:
        raise DtrunError(f"expected one RUN, JOB or TAG, got {len(items)}: {' '.join(items)}")
    _, store = open_store()
    from dtrun.engine.lifecycle import select_jobs  # the records (pydantic) only when a command needs them

    jobs = select_jobs(store, items[0])
    found = [(job, m) for job in jobs for m in store.manifests(job.output_id)]
    if output is not None:
        _download(store, found, output)
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


def _print_files(found: list[tuple[JobRecord, dict[str, Any]]]) -> None:
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


def _print_totals(found: list[tuple[JobRecord, dict[str, Any]]]) -> None:
    from dtrun.engine.artifacts import human_size
    from dtrun.ui import say

    if not found:
        say("no artifacts saved")
        return
    rows = [[job.id, _who(job), m["artifact"]["path"], str(m["artifact"]["files"]),
             human_size(int(m["artifact"]["size"]))] for job, m in found]
    _rows(["JOB", "WORKFLOW", "ARTIFACT", "FILES", "SIZE"], rows, {3, 4})


def _download(store: Store, found: list[tuple[JobRecord, dict[str, Any]]], output: Path) -> None:
    """Every artifact into OUTPUT/<its path> (absolute paths lose their leading '/'), checked on the way."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from dtrun.engine.artifacts import tar_path
    from dtrun.errors import DtrunError
    from dtrun.store import ArtifactRecord
    from dtrun.store.archive import extract
    from dtrun.ui import console, say

    targets: dict[str, str] = {}
    for job, manifest in found:
        path = manifest["artifact"]["path"].strip("/")
        if path in targets:
            raise DtrunError(f"jobs {targets[path]} and {job.id} both saved an artifact '{path}'",
                             hint="download one job at a time: dtrun artifacts JOB --output DIR")
        targets[path] = job.id
    total = sum(int(m["artifact"]["size"]) for _, m in found)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console(), transient=True, disable=not console().is_terminal) as progress:
        task = progress.add_task("downloading", total=total)
        for job, manifest in found:
            record = ArtifactRecord.model_validate(manifest["artifact"])
            progress.update(task, description=record.path)
            with store.open(tar_path(store, job.output_id, record), "rb") as data:
                # A single-file artifact's tar holds the file, named as it: extracted into its folder.
                folder = output / record.path.strip("/")
                extract(data, folder.parent if record.file else folder, progress=lambda n: progress.advance(task, n))
    say(f"downloaded {len(found)} artifact{'s' if len(found) != 1 else ''} ({_size(total)}) into {output}")


def _size(n: int) -> str:
    from dtrun.engine.artifacts import human_size

    return human_size(n)
