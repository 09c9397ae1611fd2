"""A launched dtrun job (`AgentJobSpec`) -> the `KubeJob` the manifests are made from: the one mapping the
backend submits and `dtrun run --backend kubernetes --dry-run` prints.

The container runs the in-job agent (`python -m dtrun.agent`) with the job manifest in
`DTRUN_AGENT_MANIFEST`; secret values (the job's secrets and the store's credentials) travel only in the
job's Kubernetes Secret. The engine's own labels (run, job, store, declared outputs) do not fit label
values, so they ride along as one annotation and come back from `find`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from dtrun.backends.base import AgentJobSpec
from dtrun.backends.kubernetes.job import LABEL_PREFIX, KubeJob, gpu_products
from dtrun.backends.kubernetes.settings import KubeSettings

#: The annotation holding the engine's labels (JSON).
LABELS_ANNOTATION = f"{LABEL_PREFIX}labels"
#: What the agent needs to reach an S3 store: handed to the job as secrets, from this process's environment.
STORE_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
             "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


def kube_job(spec: AgentJobSpec, settings: KubeSettings, *, namespace: str, image: str | None = None,
             cluster_products: list[str] | None = None, environ: Mapping[str, str] | None = None) -> KubeJob:
    """`cluster_products`: the GPU models the cluster's nodes advertise (None: not known, a dry run)."""
    environ = os.environ if environ is None else environ
    store_env = {k: environ[k] for k in STORE_ENV if environ.get(k)}
    return KubeJob(
        run_id=spec.run, job_id=spec.job_id, workflow=spec.workflow, image=image or spec.image,
        command=(settings.agent_python, "-m", "dtrun.agent"), namespace=namespace,
        env={"DTRUN_AGENT_MANIFEST": spec.manifest}, secrets={**store_env, **spec.secrets},
        cpu=spec.cpus, memory=spec.memory, shm_size=spec.shm_size, gpu_count=spec.gpus,
        gpu_products=gpu_products(spec.gpu_name, cluster_products) if spec.gpu_name and spec.gpus else (),
        timeout_s=spec.timeout, ttl_s=settings.ttl, torchrun=spec.torchrun,
        image_pull_secret=settings.image_pull_secret, service_account=settings.service_account,
        termination_grace_s=settings.stop_grace,
        annotations={LABELS_ANNOTATION: json.dumps(spec.labels, sort_keys=True)})


def engine_labels(job: Mapping[str, object]) -> dict[str, str]:
    """The engine's labels of a Job read back from the cluster (empty for a Job dtrun did not annotate)."""
    meta = job.get("metadata")
    annotations = (meta.get("annotations") if isinstance(meta, dict) else None) or {}
    try:
        labels = json.loads(annotations.get(LABELS_ANNOTATION, "{}"))
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
