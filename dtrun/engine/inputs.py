"""Resolving a job's dependencies to the stored artifacts it will receive.

A dep names a tag (`:data`, `:owner/repo/data`) or a workflow (`prepare`, `owner/repo/prepare`,
`prepare:tag`). Another repository is found in the same store by its id or by its `owner/name` tail.
"""

from __future__ import annotations

from dataclasses import replace

from dtrun.engine.artifacts import InputArtifact
from dtrun.errors import NotFound
from dtrun.spec.models import Dep
from dtrun.store import JobRecord, Store


def job_inputs(store: Store, repo: str, job: JobRecord) -> list[InputArtifact]:
    return [InputArtifact(repo=repo, job_id=job.output_id, record=a) for a in job.artifacts]


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
    dep = _split_repo(dep)
    repo = store.resolve_repo(dep.repo) if dep.repo else store.repo
    where = f" in {repo}" if dep.repo else ""
    if dep.tag:
        tag = store.load_tag(dep.tag, repo)
        out: list[InputArtifact] = []
        for job_id in tag.jobs:
            job = store.load_job(job_id, repo)
            if dep.workflow and job.workflow != dep.workflow:
                continue
            out.extend(job_inputs(store, repo, job))
        if dep.workflow and not out:
            raise NotFound(f"dependency {dep}: tag '{dep.tag}'{where} has no artifacts of workflow "
                           f"'{dep.workflow}'", hint="`dtrun tags` shows which workflow each tag holds")
        return out
    assert dep.workflow
    last = last_successful_job(store, dep.workflow, repo)
    if last is None:
        raise NotFound(f"dependency {dep}: workflow '{dep.workflow}' has no successful run{where}",
                       hint=f"run it first: dtrun run {dep.workflow}")
    return job_inputs(store, repo, last)


def _split_repo(dep: Dep) -> Dep:
    """The mapping form `{tag: owner/repo/name}` (seed 000) names the repository inside the tag."""
    if dep.repo:
        return dep
    if dep.tag and "/" in dep.tag:
        repo, _, tag = dep.tag.rpartition("/")
        return replace(dep, repo=repo, tag=tag)
    if dep.workflow and "/" in dep.workflow:
        repo, _, workflow = dep.workflow.rpartition("/")
        return replace(dep, repo=repo, workflow=workflow)
    return dep
