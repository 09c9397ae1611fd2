"""What a run would hand an agent backend, without running anything: `dtrun run WF --dry-run -o yaml`.

Each planned job becomes the `AgentJobSpec` the engine would launch (`engine/agent_job.py` builds the
same one at run time), and the backend's own `dry_run` turns it into the objects it would create, with
secret values masked. Known before the run: the command, env, outputs, the code snapshot's place in the
store, tagged inputs and the image's content tag (its base is probed, nothing is built). Known only at
run time: the run's name, job ids, and the outputs of the jobs it runs first; the spec says so.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from dtrun.agent.manifest import JobManifest, OutputArtifact, Transfer
from dtrun.backends.base import LABEL, AgentJobSpec
from dtrun.errors import DtrunError
from dtrun.plan import WORKSPACE

if TYPE_CHECKING:
    from dtrun.config import Settings
    from dtrun.images.host import ImageHost
    from dtrun.plan import Plan
    from dtrun.snapshot import Snapshot
    from dtrun.store import Store

#: Stands for the run's name and the job ids, which exist only once the run is recorded.
RUN = "dry-run"


@runtime_checkable
class DryRuns(Protocol):
    """A backend that can show what it would create for a job (Kubernetes objects)."""

    def dry_run(self, spec: AgentJobSpec) -> list[dict[str, Any]]: ...


def dry_run(backend: Any, plan: Plan, *, settings: Settings, store: Store, snapshot: Snapshot,
            secrets: dict[str, str], images: ImageHost) -> list[dict[str, Any]]:
    """Every object the backend would create for the plan's jobs, in the order they would run."""
    if not isinstance(backend, DryRuns):
        raise DtrunError(f"the {backend.host} backend cannot show what it would create",
                         hint="--dry-run shows Kubernetes objects: pass --backend kubernetes")
    from dtrun.engine.artifacts import tar_path
    from dtrun.engine.collect import ARTIFACTS_LABEL, declare, declared_label
    from dtrun.engine.inputs import resolve_dep
    from dtrun.engine.runner import store_label
    from dtrun.images.show import generated_dockerfile

    url = store.url if "://" in store.url else os.path.abspath(store.url)
    code = f"repos/{store.repo}/code/{snapshot.digest}.tar" if snapshot.files else None
    objects: list[dict[str, Any]] = []
    for index, job in enumerate(plan.jobs):
        job_id = f"{RUN}-{index}"
        chosen = _secrets(job.workflow, job.secrets, job.secret_references(), secrets)
        inputs = [i for dep in job.inputs for i in resolve_dep(store, dep)]
        declared = declare(job)
        env = {k: v for k, v in job.env.items() if k not in chosen}
        manifest = JobManifest(
            store=url, repo=store.repo, run=RUN, job=job_id, workflow=job.workflow,
            command=[*(job.entrypoint or []), *(job.command or [])], workspace=WORKSPACE,
            working_dir=job.working_dir, code=code,
            inputs=[Transfer(tar_path(store, i.job_id, i.record, repo=i.repo)[len(store.root):].lstrip("/"),
                             i.record.container_path) for i in inputs],
            env={**env, "DTRUN_RUN": RUN, "DTRUN_JOB": job_id, "DTRUN_WORKFLOW": job.workflow},
            secrets=sorted(chosen),
            artifacts=[OutputArtifact(d.path, d.container_path, a.mount)
                       for d, a in zip(declared, job.artifacts, strict=True)])
        image = generated_dockerfile(images, job.image, settings, driver_version=None).tag
        labels = {LABEL: "1", f"{LABEL}.repo": store.repo, f"{LABEL}.store": store_label(store),
                  f"{LABEL}.run": RUN, f"{LABEL}.job": job_id, f"{LABEL}.workflow": job.workflow,
                  ARTIFACTS_LABEL: declared_label(declared)}
        gpu = job.resources.gpu
        spec = AgentJobSpec(
            name=f"dtrun-{RUN}-{job.workflow}", run=RUN, job_id=job_id, workflow=job.workflow, image=image,
            labels=labels, manifest=manifest.to_json(), secrets=chosen, working_dir=job.working_dir,
            gpus=job.resources.gpu_count, gpu_name=gpu.name if gpu else None, memory=job.resources.memory,
            shm_size=job.resources.shm_size, cpus=job.resources.cpu, interruptible=job.resources.interruptible,
            torchrun=job.torchrun)
        objects += backend.dry_run(spec)
    return objects


def _secrets(workflow: str, declared: list[str] | None, referenced: list[str],
             values: dict[str, str]) -> dict[str, str]:
    """The secrets a job receives (as the engine picks them); a missing one is an error now, as at run time."""
    names = list(dict.fromkeys([*(values if declared is None else declared), *referenced]))
    missing = [n for n in names if n not in values]
    if missing and declared is not None:
        from dtrun.errors import NotFound

        raise NotFound(f"workflow '{workflow}' needs the secret {missing[0]}, which is not set",
                       hint=f"dtrun secrets add {missing[0]}")
    return {n: values[n] for n in names if n in values}


def render(objects: list[dict[str, Any]], output: str) -> str:
    """Objects as `-o yaml` (a multi-document stream, as `kubectl apply -f` takes) or `-o json` (a List)."""
    if output == "json":
        import json

        return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2) + "\n"
    import yaml

    return str(yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False))
