"""`dtrun logs RUN|JOB [-f] [-s SINCE]`: a job's output, from the store once it finished, from Docker
while it runs; masked either way. Plain lines (no colours, no timestamps) so it pipes well.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from dtrun.cli.app import app

if TYPE_CHECKING:
    from dtrun.cli.lifecycle import Repo
    from dtrun.store import JobRecord


@app.command()
def logs(
    target: Annotated[str, typer.Argument(metavar="RUN|JOB", help="A run name or a job id.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")] = False,
    since: Annotated[str | None, typer.Option(
        "--since", "-s", help="Only lines from this time on: ISO 8601 (2024-05-01T12:00:00Z) or relative "
        "(30s, 5m, 2h).")] = None,
    host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint, e.g. ssh://me@gpu-box.")]
    = None,
) -> None:
    """Show the output of a run's jobs or of one job."""
    from dtrun.cli.lifecycle import Repo
    from dtrun.cli.status_cmd import warn_skipped
    from dtrun.engine.logs import parse_since

    start = parse_since(since) if since else None
    repo = Repo.here(host)
    repo.reconcile()
    run, jobs = repo.find(target)
    while follow and run is not None and not run.jobs and not run.state.finished:
        time.sleep(0.3)  # a detached run whose process has not recorded its jobs yet
        run = repo.store.load_run(run.name)
        jobs = repo.store.load_jobs(run.jobs)
    for job in jobs:
        show_job(repo, job, start, follow)
    warn_skipped(repo.store)


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def show_job(repo: Repo, job: JobRecord, since: float | None, follow: bool) -> None:
    while follow and not job.state.finished and not job.container:
        time.sleep(0.3)  # submitted or building: no container yet
        job = repo.store.load_job(job.id)
    if not job.state.finished and job.container:
        if _from_docker(repo, job, since, follow):
            return
        job = _wait_stored(repo, job.id)
    stored_logs(repo, job, since)


def stored_logs(repo: Repo, job: JobRecord, since: float | None) -> None:
    from dtrun.engine.logs import stored_lines

    path = repo.store.job_path(job.output_id, "logs.txt")
    try:
        handle = repo.store.open(path, "rb")
    except FileNotFoundError:
        return
    with handle:
        for _, text in stored_lines(handle, since):
            _write(text)


def _from_docker(repo: Repo, job: JobRecord, since: float | None, follow: bool) -> bool:
    """Stream a live container's output; False if the container is gone (its logs are in the store)."""
    import docker.errors

    from dtrun.engine.logs import split_frame
    from dtrun.masking import Masker

    backend = repo.backend()
    try:
        container = backend.client.containers.get(job.container)
    except docker.errors.NotFound:
        return False
    masker = Masker(repo.secret_values())
    kwargs = {"since": since} if since is not None else {}
    try:
        for frame in backend.client.api.logs(container.id, stream=True, follow=follow, stdout=True, stderr=True,
                                             timestamps=True, **kwargs):
            _write(masker.feed(split_frame(frame)[1]))
    except docker.errors.NotFound:
        return False
    _write(masker.flush())
    return True


def _wait_stored(repo: Repo, job_id: str) -> JobRecord:
    from dtrun.engine.runner import wait_finished

    return wait_finished(repo.store, [job_id], timeout=30)[0]
