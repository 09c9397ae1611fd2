"""The objects dtrun creates for one job, as plain dicts: pure functions of a `KubeJob`.

One `batch/v1` Job (restartPolicy Never, backoffLimit 0: dtrun decides retries), plus, when needed, a
Secret holding the job's secret values (the pod reads them by reference; owned by the Job, so deleted
with it) and, for a multi-node torchrun, a headless Service giving pod 0 a stable DNS name. The Job is
created suspended when it owns other objects, so no pod starts before they exist (see `api`).
"""

from __future__ import annotations

from typing import Any

import yaml

from dtrun.backends.kubernetes.job import (
    COMPLETION_INDEX_ANNOTATION,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    KubeJob,
)
from dtrun.providers import torchrun_launch

Manifest = dict[str, Any]
CONTAINER = "job"
SHM_VOLUME = "dshm"
MASK = "***"


def owner_reference(job_name: str, uid: str) -> dict[str, Any]:
    """Makes an object part of the Job: the garbage collector deletes it with the Job."""
    return {"apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": uid,
            "controller": True, "blockOwnerDeletion": True}


def quantity_bytes(size: int) -> str:
    """Bytes as a Kubernetes quantity, in the largest binary unit that divides them exactly."""
    for suffix, factor in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if size % factor == 0:
            return f"{size // factor}{suffix}"
    return str(size)


def quantity_cpu(cores: float) -> str:
    """Cores as a Kubernetes quantity: whole cores as a number, else millicores (at least 1m)."""
    milli = max(round(cores * 1000), 1)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def objects(job: KubeJob, *, owner_uid: str | None = None, suspend: bool | None = None,
            reveal: bool = False) -> list[Manifest]:
    """Every object of a job, in creation order: the Job first (the others are owned by it).

    `owner_uid` is the created Job's uid (None for a dry run: no owner references); `suspend` defaults
    to True when the Job owns other objects; secret values are masked unless `reveal`.
    """
    extra: list[Manifest] = []
    if job.secrets:
        extra.append(secret_manifest(job, owner_uid=owner_uid, reveal=reveal))
    if job.torchrun is not None and job.nodes > 1:
        extra.append(service_manifest(job, owner_uid=owner_uid))
    return [job_manifest(job, suspend=bool(extra) if suspend is None else suspend), *extra]


def job_manifest(job: KubeJob, *, suspend: bool = False) -> Manifest:
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": job.ttl_s,
        "template": {"metadata": {"labels": job.labels}, "spec": _pod_spec(job)},
    }
    if job.timeout_s is not None:
        spec["activeDeadlineSeconds"] = job.timeout_s
    if job.nodes > 1:
        # One pod per node, all at once; any failed pod fails the Job (backoffLimit 0), so all ranks fail
        # together and dtrun restarts them together.
        spec.update(completionMode="Indexed", completions=job.nodes, parallelism=job.nodes)
    if suspend:
        spec["suspend"] = True
    meta = _meta(job, job.name)
    if job.annotations:
        meta["annotations"] = dict(job.annotations)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}


def secret_manifest(job: KubeJob, *, owner_uid: str | None = None, reveal: bool = False) -> Manifest:
    data = {k: (v if reveal else MASK) for k, v in sorted(job.secrets.items())}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": _meta(job, job.secret_name, owner_uid), "stringData": data}


def service_manifest(job: KubeJob, *, owner_uid: str | None = None) -> Manifest:
    """Headless: no virtual IP, one DNS record per pod (`<job>-<index>.<service>`), even before it is ready."""
    assert job.torchrun is not None
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(job, job.service_name, owner_uid),
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": job.labels,
                     "ports": [{"name": "rendezvous", "port": job.torchrun.port, "protocol": "TCP"}]}}


def to_yaml(manifests: list[Manifest]) -> str:
    """A multi-document YAML stream, as `kubectl apply -f` takes it."""
    return yaml.safe_dump_all(manifests, sort_keys=False, default_flow_style=False)


def _meta(job: KubeJob, name: str, owner_uid: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": job.namespace, "labels": job.labels}
    if owner_uid:
        meta["ownerReferences"] = [owner_reference(job.name, owner_uid)]
    return meta


def _pod_spec(job: KubeJob) -> dict[str, Any]:
    container: dict[str, Any] = {"name": CONTAINER, "image": job.image, "command": list(job.command),
                                 "env": _env(job)}
    resources = _resources(job)
    if resources:
        container["resources"] = resources
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": job.termination_grace_s,
        # The agent talks to the store, never to the API server.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [container],
    }
    if job.shm_size is not None:
        container["volumeMounts"] = [{"name": SHM_VOLUME, "mountPath": "/dev/shm"}]
        spec["volumes"] = [{"name": SHM_VOLUME,
                            "emptyDir": {"medium": "Memory", "sizeLimit": quantity_bytes(job.shm_size)}}]
    if job.nodes > 1:
        spec["subdomain"] = job.service_name
    if len(job.gpu_products) == 1:
        spec["nodeSelector"] = {GPU_PRODUCT_LABEL: job.gpu_products[0]}
    elif job.gpu_products:
        term = {"matchExpressions": [{"key": GPU_PRODUCT_LABEL, "operator": "In",
                                      "values": list(job.gpu_products)}]}
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                                             {"nodeSelectorTerms": [term]}}}
    if job.gpu_count:
        # GPU nodes are commonly tainted so that only pods asking for GPUs land there.
        spec["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    if job.image_pull_secret:
        spec["imagePullSecrets"] = [{"name": job.image_pull_secret}]
    if job.service_account:
        spec["serviceAccountName"] = job.service_account
    return spec


def _env(job: KubeJob) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(job.env.items())]
    env += [{"name": k, "valueFrom": {"secretKeyRef": {"name": job.secret_name, "key": k}}}
            for k in sorted(job.secrets)]
    if job.torchrun is not None and job.nodes > 1:
        rdzv = torchrun_launch.Rendezvous(nnodes=job.nodes, nproc_per_node=job.torchrun.nproc_per_node,
                                          master_addr=job.master_addr, master_port=job.torchrun.port)
        env += [{"name": k, "value": v} for k, v in torchrun_launch.common_env(rdzv).items()]
        # The node rank is the pod's completion index (what JOB_COMPLETION_INDEX holds), read from the
        # annotation the Job controller puts on each pod.
        env.append({"name": "PET_NODE_RANK", "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}}})
    return env


def _resources(job: KubeJob) -> dict[str, Any]:
    """Requests equal to limits (the Guaranteed QoS class: a job is not evicted for using what it asked)."""
    amounts: dict[str, str] = {}
    if job.cpu is not None:
        amounts["cpu"] = quantity_cpu(job.cpu)
    if job.memory is not None:
        amounts["memory"] = quantity_bytes(job.memory)
    if job.gpu_count:
        amounts[GPU_RESOURCE] = str(job.gpu_count)
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}
