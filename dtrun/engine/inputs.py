"""Resolving a job's dependencies to the stored artifacts it will receive."""

from __future__ import annotations

from dtrun.engine.artifacts import InputArtifact
from dtrun.errors import NotFound
from dtrun.spec.models import Dep
from dtrun.store import JobRecord, Store


def job_inputs(store: Store, repo: str, job: JobRecord) -> list[InputArtifact]:
    return [InputArtifact(repo=repo, job_id=job.cached_from or job.id, record=a) for a in job.artifacts]


def last_successful_job(store: Store, workflow: str, repo: str | None = None) -> JobRecord | None:
    best: JobRecord | None = None
    for run in store.runs(repo):
        for job_id in run.jobs:
            try:
                job = store.load_job(job_id, repo)
            except NotFound:
                continue
            if job.workflow == workflow and job.state.succeeded and \
                    (best is None or (job.finished_at or 0) > (best.finished_at or 0)):
                best = job
    return best


def resolve_dep(store: Store, dep: Dep) -> list[InputArtifact]:
    """A tag or a workflow's last successful run (maybe of another repository) -> its artifacts."""
    repo = dep.repo or store.repo
    if dep.tag:
        tag_path = store.repo_path("tags", f"{dep.tag}.json", repo=repo)
        if not store.exists(tag_path):
            raise NotFound(f"dependency {dep}: no tag '{dep.tag}'" + (f" in {repo}" if dep.repo else ""),
                           hint="`dtrun tags` lists tags; `dtrun tags add TAG RUN` creates one")
        import json

        data = json.loads(store.read_bytes(tag_path))
        out: list[InputArtifact] = []
        for job_id in data.get("jobs", []):
            job = store.load_job(job_id, repo)
            if dep.workflow and job.workflow != dep.workflow:
                continue
            out.extend(job_inputs(store, repo, job))
        return out
    assert dep.workflow
    last = last_successful_job(store, dep.workflow, repo)
    if last is None:
        raise NotFound(f"dependency {dep}: workflow '{dep.workflow}' has no successful run"
                       + (f" in {repo}" if dep.repo else ""),
                       hint=f"run it first: dtrun run {dep.workflow}")
    return job_inputs(store, repo, last)
