"""`dtrun status` (alias `ps`): runs and their jobs, as seed 003's table.

By default the unfinished runs; if there are none, the last finished one. `--last N` shows the N most
recent runs whatever their state. Reads as little of the store as it can: the active-run markers and
the run files' modification times pick which runs to load.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dtrun.cli.app import app

if TYPE_CHECKING:
    from dtrun.store import JobRecord, RunRecord, Store

COLUMNS = ("RUN", "TAG", "JOB", "WORKFLOW", "VARIABLES", "SUBMITTED", "RUNNER", "STATUS")


def status(
    last: Annotated[int | None, typer.Option("--last", "-n", min=1, help="Show the N most recent runs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs and jobs as JSON.")] = False,
    host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint, e.g. ssh://me@gpu-box.")]
    = None,
) -> None:
    """Show runs and their jobs: the unfinished ones, else the last finished one (alias: ps)."""
    from dtrun.cli.lifecycle import Repo, display_state

    repo = Repo.here(host)
    repo.reconcile()
    runs = pick_runs(repo.store, last)
    rows: list[tuple[RunRecord, list[JobRecord]]] = []
    for run in runs:
        rows.append((run, repo.store.load_jobs(run.jobs)))
    warn_skipped(repo.store)
    if as_json:
        import json

        data: list[dict[str, Any]] = []
        for run, jobs in rows:
            item = run.model_dump(mode="json")
            item["jobs"] = [{**j.model_dump(mode="json"), "state": display_state(repo.store, j)} for j in jobs]
            data.append(item)
        typer.echo(json.dumps(data, indent=1))
        return
    if not rows:
        typer.echo("no runs yet (start one with `dtrun run WORKFLOW`)")
        return
    typer.echo(render(rows, lambda j: display_state(repo.store, j)))


app.command("status")(status)
app.command("ps", hidden=True, help="Alias of `dtrun status`.")(status)


def pick_runs(store: Store, last: int | None) -> list[RunRecord]:
    from dtrun.engine.control import active_runs
    from dtrun.errors import DtrunError, NotFound

    def load(names: list[str]) -> list[RunRecord]:
        out = []
        for name in names:
            try:
                out.append(store.load_run(name))
            except NotFound:
                continue
            except DtrunError as exc:
                store.skip(exc)
        return out

    if last is None:
        active = load(active_runs(store))
        if active:
            return sorted(active, key=lambda r: r.submitted_at, reverse=True)
        candidates = load(recent_run_names(store, 5))
        done = sorted(candidates, key=lambda r: r.finished_at or r.submitted_at, reverse=True)
        return done[:1]
    runs = load(recent_run_names(store, last + 10))
    return sorted(runs, key=lambda r: r.submitted_at, reverse=True)[:last]


def recent_run_names(store: Store, count: int) -> list[str]:
    """The names of the `count` most recently written run files (one listing, no file read)."""
    try:
        entries = store.fs.ls(store.repo_path("runs"), detail=True)
    except FileNotFoundError:
        return []
    def mtime(entry: dict[str, Any]) -> float:
        value = entry.get("mtime") or entry.get("LastModified") or entry.get("created") or 0
        return value.timestamp() if hasattr(value, "timestamp") else float(value)

    files = [e for e in entries if str(e["name"]).endswith(".json")]
    files.sort(key=mtime, reverse=True)
    return [str(e["name"]).rsplit("/", 1)[-1][:-5] for e in files[:count]]


def ago(when: float, now: float | None = None) -> str:
    seconds = max(0, int((now or time.time()) - when))
    if seconds < 10:
        return "just now"
    if seconds < 60:
        return f"{seconds} secs ago"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "min")):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "just now"


def render(rows: list[tuple[RunRecord, list[JobRecord]]], state: Any) -> str:
    table: list[tuple[str, ...]] = [COLUMNS]
    for run, jobs in rows:
        variables = " ".join([*(f"--{k} {v}" for k, v in run.variables.items()), *run.args]) or "-"
        run_state = run.state.value if run.state.finished or not jobs else _run_state(jobs, state)
        table.append((run.name, run.tag or "<none>", "", run.workflow, variables, ago(run.submitted_at),
                      run.host or "-", run_state))
        for job in jobs:
            table.append(("", "", job.id, job.workflow, variables, ago(job.submitted_at), job.host or "-",
                          state(job)))
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table)


def _run_state(jobs: list[JobRecord], state: Any) -> str:
    """An unfinished run shows what its busiest job is doing."""
    states = [state(j) for j in jobs]
    for wanted in ("ABORTING", "STOPPING", "UPLOADING", "RUNNING", "BUILDING"):
        if wanted in states:
            return wanted
    return "SUBMITTED" if all(s == "SUBMITTED" for s in states) else "RUNNING"


def warn_skipped(store: Store) -> None:
    """One warning line on stderr per damaged record a listing passed over."""
    for message in store.skipped:
        typer.echo(f"warning: {message}; skipped", err=True)
