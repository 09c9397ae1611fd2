"""Tags: a name for the artifacts of a finished run, reusable as `deps: [:name]` by any workflow.

A tag of a run stands for the artifacts of all its jobs; a tag of uploaded data stands for one
job record (provider `upload`) that holds the uploaded folders. Tags live in their repository's
namespace; another repository reaches them as `owner/repo/name`.
"""

from __future__ import annotations

import getpass
import os
import uuid

from dtrun.errors import DtrunError
from dtrun.store.records import JobRecord, State, TagRecord
from dtrun.store.store import Store, check_tag_name


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER")


def check_tag_free(store: Store, name: str, replace: bool = False) -> None:
    check_tag_name(name)
    if not replace and store.exists(store.tag_path(name)):
        raise DtrunError(f"tag '{name}' already exists",
                         hint=f"delete it first (`dtrun tags delete {name}`) or pick another name")


def tag_run(store: Store, name: str, run_name: str, *, replace: bool = False) -> TagRecord:
    """Tag a finished, successful run of this repository."""
    check_tag_free(store, name, replace)
    run = store.load_run(run_name)
    if not run.state.finished:
        raise DtrunError(f"run '{run_name}' is still {run.state.value}",
                         hint=f"tag it when it has finished, or run with `-t {name}` to tag it on success")
    if not run.state.succeeded:
        raise DtrunError(f"run '{run_name}' did not succeed ({run.state.value}); only successful runs can be tagged",
                         hint="`dtrun logs " + run_name + "` shows what went wrong")
    jobs = [store.load_job(j) for j in run.jobs]
    tag = TagRecord(name=name, repo=store.repo, run=run.name, workflow=run.workflow, jobs=[j.id for j in jobs],
                    artifacts=[a.path for j in jobs for a in j.artifacts], user=_user())
    store.save_tag(tag)
    run.tag = name
    store.save_run(run)
    return tag


def new_upload_job(store: Store, name: str, *, replace: bool = False) -> JobRecord:
    """The job record that will hold the folders of `dtrun tags add NAME -a PATH...`."""
    check_tag_free(store, name, replace)
    job = JobRecord(id=f"up{uuid.uuid4().hex[:10]}", run="", workflow="", provider="upload")
    job.move(State.UPLOADING)
    return job


def tag_upload(store: Store, name: str, job: JobRecord) -> TagRecord:
    job.move(State.DONE)
    store.save_job(job)
    tag = TagRecord(name=name, repo=store.repo, jobs=[job.id], artifacts=[a.path for a in job.artifacts],
                    user=_user())
    store.save_tag(tag)
    return tag
