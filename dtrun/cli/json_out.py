"""The `--json` output of each command, one schema per command (docs/json.md): what scripts read.

Each builder returns plain JSON data; `emit` writes it to stdout alone, so `dtrun X --json | jq` works
while everything dtrun says goes to stderr. Field names follow the store's records, so a field means
the same in `status --json`, `run --json` and the records themselves.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dtrun.store import JobRecord, RunRecord, TagRecord


def emit(data: object) -> None:
    """`data` as indented JSON on stdout, then a newline."""
    sys.stdout.write(json.dumps(data, indent=1) + "\n")
    sys.stdout.flush()


def run_summary(run: RunRecord, jobs: list[JobRecord]) -> dict[str, Any]:
    """`dtrun run --json`: the run, its jobs with states and exit codes, and what each saved."""
    return {
        "run": run.name,
        "workflow": run.workflow,
        "state": run.state.value,
        "exit_code": run.exit_code or 0,
        "tag": run.tag,
        "submitted_at": run.submitted_at,
        "finished_at": run.finished_at,
        "jobs": [{
            "id": job.id,
            "workflow": job.workflow,
            "state": job.state.value,
            "exit_code": job.exit_code,
            "message": job.message,
            "cached_from": job.cached_from,
            "ports": job.ports,
            "artifacts": [{"path": a.path, "files": a.files, "size": a.size} for a in job.artifacts],
        } for job in jobs],
    }


def artifacts(found: list[tuple[JobRecord, dict[str, Any]]]) -> list[dict[str, Any]]:
    """`dtrun artifacts RUN|JOB|TAG --json`: each artifact with its totals and its files."""
    out = []
    for job, manifest in found:
        art = manifest["artifact"]
        files = []
        for entry in manifest["files"]:
            if entry["type"] == "dir":
                continue
            item: dict[str, Any] = {"path": entry["path"], "type": entry["type"]}
            if entry["type"] == "file":
                item["size"] = int(entry["size"])
            else:
                item["target"] = entry.get("target")
            files.append(item)
        out.append({"job": job.id, "workflow": job.workflow or None, "path": art["path"],
                    "files": int(art["files"]), "size": int(art["size"]), "entries": files})
    return out


def tags(records: list[TagRecord]) -> list[dict[str, Any]]:
    """`dtrun tags --json`: each tag, the run it names (none for an upload) and its artifacts."""
    return [{"tag": t.name, "repo": t.repo, "run": t.run, "workflow": t.workflow, "jobs": t.jobs,
             "artifacts": t.artifacts, "created_at": t.created_at} for t in records]
