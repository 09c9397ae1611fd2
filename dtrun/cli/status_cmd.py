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
    from collections.abc import Callable

    from dtrun.store import JobRecord, RunRecord

COLUMNS = ("RUN", "TAG", "JOB", "WORKFLOW", "VARIABLES", "SUBMITTED", "RUNNER", "STATUS")


def status(
    last: Annotated[int | None, typer.Option("--last", "-n", min=1, help="Show the N most recent runs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs and jobs as JSON.")] = False,
    host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint, e.g. ssh://me@gpu-box.")]
    = None,
) -> None:
    """Show runs and their jobs: the unfinished ones, else the last finished one (alias: ps)."""
    from dtrun.cli.lifecycle import display_state, session
    from dtrun.store import State

    current = session(host)
    rows = current.status(last)

    def urls(job: JobRecord) -> dict[str, str]:
        """Only a running job (one with a container) has addresses: asking for a finished one's would
        load the backend and provider modules for nothing."""
        return current.urls(job) if job.state == State.RUNNING and job.container else {}

    if as_json:
        import json

        data: list[dict[str, Any]] = []
        for run, jobs in rows:
            item = run.to_dict()
            item["jobs"] = [{**j.to_dict(), "state": display_state(current.store, j), "urls": urls(j)}
                            for j in jobs]
            data.append(item)
        typer.echo(json.dumps(data, indent=1))
        return
    if not rows:
        typer.echo("no runs yet (start one with `dtrun run WORKFLOW`)")
        return
    typer.echo(render(rows, lambda j: display_state(current.store, j), urls))


app.command("status")(status)
app.command("ps", hidden=True, help="Alias of `dtrun status`.")(status)



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


def render(rows: list[tuple[RunRecord, list[JobRecord]]], state: Any,
           urls: Callable[[JobRecord], dict[str, str]] = lambda j: {}) -> str:
    """The table; under a running job's row, where its ports and app are (`name: url`)."""
    table: list[tuple[str, ...]] = [COLUMNS]
    below: dict[int, list[str]] = {}
    for run, jobs in rows:
        variables = " ".join([*(f"--{k} {v}" for k, v in run.variables.items()), *run.args]) or "-"
        run_state = run.state.value if run.state.finished or not jobs else _run_state(jobs, state)
        table.append((run.name, run.tag or "<none>", "", run.workflow, variables, ago(run.submitted_at),
                      run.host or "-", run_state))
        for job in jobs:
            shown = state(job)
            if shown == "SUBMITTED" and job.message:  # why it waits: a cluster's queue (squeue's reason)
                shown += f" ({job.message})"
            table.append(("", "", job.id, job.workflow, variables, ago(job.submitted_at), job.host or "-", shown))
            below[len(table) - 1] = [f"    {name}: {url}" for name, url in urls(job).items()]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = []
    for i, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        lines.extend(below.get(i, []))
    return "\n".join(lines)


def _run_state(jobs: list[JobRecord], state: Any) -> str:
    """An unfinished run shows what its busiest job is doing."""
    states = [state(j) for j in jobs]
    for wanted in ("ABORTING", "STOPPING", "UPLOADING", "RUNNING", "BUILDING"):
        if wanted in states:
            return wanted
    return "SUBMITTED" if all(s == "SUBMITTED" for s in states) else "RUNNING"
