"""What the Kubernetes backend needs to know about one job, in dtrun's own terms.

A `KubeJob` is built by the backend from a planned job; everything the manifests contain comes from it,
so the manifests are a pure function of it. Names and labels are derived deterministically from the
run and job ids: labels are the ground truth reconcile reads back from the cluster.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import field

from dtrun.errors import SpecError
from dtrun.providers.torchrun_launch import Torchrun
from dtrun.structs import struct

__all__ = ["KubeJob", "Torchrun", "dns_label", "gpu_products", "label_value"]

MANAGED_BY = "dtrun"
LABEL_PREFIX = "dtrun.dev/"
# The GPU-feature-discovery label that names the GPU model of a node (e.g. NVIDIA-A100-SXM4-80GB).
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_RESOURCE = "nvidia.com/gpu"
# Set by the Job controller on every pod of an Indexed Job; JOB_COMPLETION_INDEX is read from it.
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
# Pod hostnames of an Indexed Job are `<job name>-<index>` and must stay within 63 characters.
_NAME_MAX = 52


@struct(frozen=True)
class KubeJob:
    """One dtrun job as the Kubernetes backend runs it.

    `command` is the container's command (the in-job agent, which fetches code and deps from the store);
    `env` is plain configuration; `secrets` are values that only ever travel inside a Kubernetes Secret
    (the pod reads them by reference). Sizes are bytes; `cpu` is in cores; `timeout_s` bounds the job's
    whole life on the cluster (activeDeadlineSeconds).
    """

    run_id: str
    job_id: str
    workflow: str
    image: str
    command: tuple[str, ...]
    namespace: str = "default"
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    cpu: float | None = None
    memory: int | None = None
    shm_size: int | None = None
    gpu_count: int = 0
    gpu_products: tuple[str, ...] = ()
    timeout_s: int | None = None
    ttl_s: int = 24 * 3600
    torchrun: Torchrun | None = None
    image_pull_secret: str | None = None
    service_account: str | None = None
    termination_grace_s: int = 30
    #: On the Job only (not its pods): what dtrun reads back that does not fit a label value.
    annotations: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.torchrun is not None and self.torchrun.nodes < 1:
            raise SpecError(f"workflow '{self.workflow}': nodes must be at least 1, got {self.torchrun.nodes}")
        if self.gpu_products and not self.gpu_count:
            raise SpecError(f"workflow '{self.workflow}' names a GPU model but asks for no GPU",
                            hint="write `gpu: {name: A100, count: 1}`")

    @property
    def nodes(self) -> int:
        return self.torchrun.nodes if self.torchrun else 1

    @property
    def name(self) -> str:
        """The Job's name (and the stem of its Secret and Service): `dtrun-<workflow>-<hash of ids>`."""
        digest = hashlib.sha256(f"{self.run_id}/{self.job_id}".encode()).hexdigest()[:10]
        stem = dns_label(self.workflow)[: _NAME_MAX - len("dtrun--") - len(digest)].rstrip("-")
        return f"dtrun-{stem}-{digest}" if stem else f"dtrun-{digest}"

    @property
    def labels(self) -> dict[str, str]:
        """The labels every object of this job carries; `selector` picks its pods by the first three."""
        return {
            "app.kubernetes.io/managed-by": MANAGED_BY,
            f"{LABEL_PREFIX}run": label_value(self.run_id),
            f"{LABEL_PREFIX}job": label_value(self.job_id),
            f"{LABEL_PREFIX}workflow": label_value(self.workflow),
        }

    @property
    def selector(self) -> str:
        """A label selector that finds exactly this job's objects."""
        return ",".join(f"{k}={v}" for k, v in self.labels.items() if k != f"{LABEL_PREFIX}workflow")

    @property
    def secret_name(self) -> str:
        return f"{self.name}-env"

    @property
    def service_name(self) -> str:
        return self.name

    @property
    def master_addr(self) -> str:
        """Pod 0's stable DNS name: `<job>-0.<headless service>.<namespace>.svc`."""
        return f"{self.name}-0.{self.service_name}.{self.namespace}.svc"


def dns_label(text: str) -> str:
    """Lower-case letters, digits and dashes, as an RFC 1123 label allows (may be empty)."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", text.lower())).strip("-")


def label_value(text: str) -> str:
    """A label value (63 characters of [A-Za-z0-9_.-], alphanumeric at both ends); long ones keep a hash."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    if len(cleaned) > 63:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        cleaned = cleaned[:54].rstrip("-_.") + "-" + digest
    return cleaned or "x"


def gpu_products(name: str, cluster_products: list[str] | None = None) -> tuple[str, ...]:
    """The `nvidia.com/gpu.product` label values that a workflow's GPU `name` accepts.

    dtrun matches GPU names as case-insensitive substrings (`A100` matches `NVIDIA-A100-SXM4-80GB`), which a
    label selector cannot do: given the products the cluster's nodes advertise, the matching ones are
    returned; without them (a dry run), the name itself in the label's spelling (spaces as dashes).
    """
    wanted = name.lower().replace(" ", "").replace("-", "")
    if cluster_products is not None:
        matches = sorted({p for p in cluster_products if wanted in p.lower().replace("-", "")})
        if not matches:
            known = ", ".join(sorted(set(cluster_products))) or "none"
            raise SpecError(f"no node of the cluster has a GPU of model {name}",
                            hint=f"the cluster's GPU models ({GPU_PRODUCT_LABEL}): {known}")
        return tuple(matches)
    return (label_value(name.strip().replace(" ", "-")),)
