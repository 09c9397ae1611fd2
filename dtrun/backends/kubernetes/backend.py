"""`KubernetesBackend`: dtrun's jobs as `batch/v1` Jobs running the in-job agent (an `AgentJobBackend`).

Only what is Kubernetes' own lives here: an `AgentJobSpec` becomes a `KubeJob` (`mapping.py`) and its
objects (`manifests.py`), created idempotently through `api.py`; the queue is read back as `QueueJob`s
from the Job, its pods and their events (`status.py`: "not scheduled: 0/3 nodes are available: 3
Insufficient nvidia.com/gpu."); a stop is a graceful delete of the pods with the grace period, during
which the agent's SIGTERM handler saves the outputs. Logs, exits, outputs and claims come from the
shared `dtrun.backends.agent` layer. The cluster is reached only when first needed, so a dry run
needs none.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from dtrun.backends.agent import AgentHandle, AgentJobBackend, QueueJob
from dtrun.backends.base import CREATED, EXITED, LABEL, RUNNING, AgentJobSpec, Exit, Output
from dtrun.backends.kubernetes.job import MANAGED_BY, KubeJob
from dtrun.backends.kubernetes.mapping import engine_labels, kube_job
from dtrun.backends.kubernetes.settings import KubeSettings

if TYPE_CHECKING:
    from dtrun.backends.kubernetes.api import KubeApi
    from dtrun.backends.kubernetes.status import JobState
    from dtrun.config import Settings

_PHASES = {"pending": CREATED, "running": RUNNING, "succeeded": EXITED, "failed": EXITED}


class KubernetesBackend(AgentJobBackend):
    #: An Indexed Job (one pod per node, rank from the completion index) plus a headless Service for
    #: node 0's stable name; every pod runs the agent, node 0's is the job's record (agent/runner.py).
    multi_node = True

    def __init__(self, settings: Settings, kube: KubeSettings, api: KubeApi | None = None) -> None:
        super().__init__(settings)
        self.kube = kube
        if api is not None:
            self.__dict__["api"] = api
        where = kube.context or "the current context"
        self.host = f"kubernetes ({where}" + (f", namespace {kube.namespace})" if kube.namespace else ")")
        self._states: dict[str, JobState] = {}

    @cached_property
    def api(self) -> KubeApi:
        from dtrun.backends.kubernetes.api import KubeApi

        return KubeApi(kubeconfig=self.kube.kubeconfig, context=self.kube.context, namespace=self.kube.namespace)

    # -- submit --------------------------------------------------------------------------------------
    def job_name(self, spec: AgentJobSpec) -> str:
        return self.kube_job(spec).name

    def kube_job(self, spec: AgentJobSpec, *, cluster_products: list[str] | None = None) -> KubeJob:
        namespace = self.kube.namespace or self.api.namespace
        return kube_job(spec, self.kube, namespace=namespace, image=self._node_image(spec.image),
                        cluster_products=cluster_products)

    def submit_job(self, spec: AgentJobSpec, notify: Output) -> str:
        products = self.api.gpu_products() if spec.gpu_name and spec.gpus else None
        job = self.kube_job(spec, cluster_products=products)
        self.api.submit(job)  # idempotent: a re-submitted job finds its own objects
        notify(f"  submitted {spec.workflow} as Kubernetes Job {job.namespace}/{job.name} ({job.image})")
        return job.name

    def publish_image(self, image: str, output: Output) -> str:
        """With `kubernetes.registry`, tag and push the image there for the cluster to pull."""
        if not self.kube.registry:
            return image
        import subprocess

        target = self._node_image(image)
        for args in (["docker", "tag", image, target], ["docker", "push", target]):
            proc = subprocess.run(args, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                from dtrun.backends.kubernetes.api import ClusterError

                raise ClusterError(f"cannot push {image} to kubernetes.registry {self.kube.registry}: "
                                   f"{proc.stderr.strip()[-300:]}", hint="`docker login` to the registry")
        output(f"pushed {target}")
        return image

    def _node_image(self, image: str) -> str:
        """The reference the cluster pulls `image` by."""
        if not self.kube.registry:
            return image
        return f"{self.kube.registry.rstrip('/')}/{image.rsplit('/', 1)[-1]}"

    # -- the queue -----------------------------------------------------------------------------------
    def list_jobs(self, labels: dict[str, str]) -> list[QueueJob]:
        selector = f"app.kubernetes.io/managed-by={MANAGED_BY}"
        found = []
        for item in self.api.list_jobs(selector):
            engine = engine_labels(item)
            if not engine or any(engine.get(k) != v for k, v in labels.items()):
                continue
            handle = AgentHandle(item["metadata"]["name"], item["metadata"]["name"], engine)
            job = self.lookup(handle)
            if job is not None:
                found.append(job)
        return found

    def lookup(self, handle: AgentHandle) -> QueueJob | None:
        job = self._handle_job(handle)
        try:
            state = self.api.state(job)
        except Exception as exc:
            if getattr(exc, "status", None) != 404:
                raise
            # The Job is gone (a stop deletes it at once); its pods may still be saving their outputs.
            if self.api.pods(job):
                return QueueJob(handle.id, handle.name, handle.labels, RUNNING, "stopping")
            return None
        self._states[handle.id] = state
        phase = _PHASES[state.phase]
        return QueueJob(handle.id, handle.name, handle.labels, phase, reason=state.reason,
                        exit_code=state.exit_code if phase == EXITED else None)

    def wait(self, handle: AgentHandle) -> Exit:
        """The agent's exit, marked out of memory when the cluster says the container was OOM-killed."""
        from dataclasses import replace

        result = super().wait(handle)
        state = self._states.get(handle.id)
        if state is not None and state.out_of_memory and not result.oom_killed:
            return replace(result, oom_killed=True)
        return result

    def stop(self, handle: AgentHandle, grace: int = 10) -> None:
        """A graceful delete: each pod gets SIGTERM (the agent saves outputs) and `grace` seconds."""
        self.api.delete(self._handle_job(handle), grace_s=grace)

    def signal_job(self, handle: AgentHandle, signal: str) -> None:
        self.api.delete(self._handle_job(handle), grace_s=self.kube.stop_grace)

    def cancel_job(self, handle: AgentHandle) -> None:
        self.api.delete(self._handle_job(handle), grace_s=0)

    def release_job(self, handle: AgentHandle) -> None:
        """A finished job's Job (its Secret and Service go with it); ttlSecondsAfterFinished otherwise."""
        self.api.delete(self._handle_job(handle), grace_s=0)

    def _handle_job(self, handle: AgentHandle) -> KubeJob:
        """The `KubeJob` a handle stands for, enough to find its objects (name, namespace, selector)."""
        labels = handle.labels
        return KubeJob(run_id=labels.get(f"{LABEL}.run", ""), job_id=labels.get(f"{LABEL}.job", ""),
                       workflow=labels.get(f"{LABEL}.workflow", ""), image="", command=(),
                       namespace=self.kube.namespace or self.api.namespace)

    # -- a dry run -------------------------------------------------------------------------------------
    def dry_run(self, spec: AgentJobSpec) -> list[dict[str, Any]]:
        """The objects `submit_job` would create for `spec`, secret values masked; no cluster needed."""
        from dtrun.backends.kubernetes import manifests
        from dtrun.backends.kubernetes.mapping import kube_job as to_kube

        namespace = self.kube.namespace or "default"
        return manifests.objects(to_kube(spec, self.kube, namespace=namespace, image=self._node_image(spec.image)))

