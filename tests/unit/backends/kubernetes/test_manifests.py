"""Golden manifests for the Kubernetes backend, each validated strictly against the API's OpenAPI schemas.

Regenerate after an intended change with `DTRUN_UPDATE_GOLDEN=1 pytest tests/unit/backends/kubernetes`,
then read the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from dtrun.backends.kubernetes import manifests
from dtrun.backends.kubernetes.job import KubeJob, Torchrun, gpu_products, label_value
from dtrun.errors import SpecError
from tests.unit.backends.kubernetes.cases import AGENT, CASES, IMAGE

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("DTRUN_UPDATE_GOLDEN") == "1"
# Two supported minor versions: the oldest kept here and the newest the validator knows.
VERSIONS = ("1.33.0", "1.37.0")
OWNER_UID = "6f1d2c3b-0000-4000-8000-00000000abcd"


def _validate(manifest: dict[str, Any], version: str) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_manifests_match_their_golden_file_and_the_api_schemas(case: str) -> None:
    objects = manifests.objects(CASES[case], owner_uid=OWNER_UID)
    text = manifests.to_yaml(objects)
    path = GOLDEN / f"{case}.yaml"
    if UPDATE:
        path.write_text(text)
    assert path.is_file(), f"no golden file {path}; run with DTRUN_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"{case} differs from its golden file (DTRUN_UPDATE_GOLDEN=1 regenerates)"
    for manifest in yaml.safe_load_all(text):
        for version in VERSIONS:
            _validate(manifest, version)


def test_the_strict_validation_rejects_what_the_api_server_would() -> None:
    import kubernetes_validate

    job = manifests.job_manifest(CASES["cpu"])
    job["spec"]["template"]["spec"]["containers"][0]["gpus"] = 1  # no such field
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(job, VERSIONS[0])
    bad = manifests.job_manifest(CASES["cpu"])
    bad["spec"]["backoffLimit"] = "zero"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(bad, VERSIONS[1])


def test_the_job_is_never_restarted_by_kubernetes_and_is_bounded_in_time() -> None:
    job = manifests.job_manifest(CASES["cpu"])
    pod = job["spec"]["template"]["spec"]
    assert (pod["restartPolicy"], job["spec"]["backoffLimit"]) == ("Never", 0)
    assert job["spec"]["activeDeadlineSeconds"] == 3600 and job["spec"]["ttlSecondsAfterFinished"] == 86400
    assert pod["containers"][0]["command"] == list(AGENT) and pod["containers"][0]["image"] == IMAGE
    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"},
                                                 "limits": {"cpu": "2", "memory": "4Gi"}}
    assert "suspend" not in job["spec"]  # owns nothing: starts at once


def test_names_and_labels_are_deterministic_and_valid() -> None:
    a, b = CASES["secrets-shm"], KubeJob(**{**CASES["secrets-shm"].__dict__})
    assert a.name == b.name and a.name.startswith("dtrun-fine-tune-lora-") and len(a.name) <= 52
    other = KubeJob(**{**a.__dict__, "job_id": "j2266aa2"})
    assert other.name != a.name
    long = KubeJob(**{**a.__dict__, "workflow": "w" * 200})
    assert len(long.name) <= 52 and len(f"{long.name}-15") <= 63
    assert label_value("Fine tune (LoRA)") == "Fine-tune-LoRA"
    assert len(label_value("x" * 100)) <= 63
    assert a.selector == "app.kubernetes.io/managed-by=dtrun,dtrun.dev/run=calm-heron-3,dtrun.dev/job=j2266aa1"


def test_secret_values_only_travel_in_the_secret_and_are_masked_for_printing() -> None:
    job = CASES["secrets-shm"]
    shown = manifests.to_yaml(manifests.objects(job))
    assert "wandb-secret-value" not in shown and "hf-secret-value" not in shown
    real = manifests.objects(job, owner_uid=OWNER_UID, reveal=True)
    kinds = [m["kind"] for m in real]
    assert kinds == ["Job", "Secret"] and real[0]["spec"]["suspend"] is True
    assert real[1]["stringData"] == {"HF_TOKEN": "hf-secret-value", "WANDB_API_KEY": "wandb-secret-value"}
    assert real[1]["metadata"]["ownerReferences"][0]["uid"] == OWNER_UID
    env = real[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": job.secret_name, "key": "HF_TOKEN"}}} in env
    assert "secret-value" not in yaml.safe_dump(real[0])
    pod = real[0]["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}]


def test_a_two_node_torchrun_is_an_indexed_job_behind_a_headless_service() -> None:
    job = CASES["torchrun-2-nodes"]
    made = manifests.objects(job, owner_uid=OWNER_UID)
    spec, service = made[0]["spec"], made[1]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 2, 2)
    assert spec["template"]["spec"]["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["selector"] == job.labels
    env = {e["name"]: e for e in spec["template"]["spec"]["containers"][0]["env"]}
    assert env["PET_MASTER_ADDR"]["value"] == f"{job.name}-0.{job.name}.ml.svc"
    assert env["PET_NNODES"]["value"] == "2" and env["PET_NPROC_PER_NODE"]["value"] == "2"
    assert env["PET_NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    limits = spec["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "2"


def test_gpu_names_become_node_selection_on_the_gpu_product_label() -> None:
    pod = manifests.job_manifest(CASES["gpu"])["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    several = manifests.job_manifest(CASES["torchrun-2-nodes"])["spec"]["template"]["spec"]
    values = several["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchExpressions"][0]["values"]
    assert values == ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-SXM5-80GB"]
    cluster = ["NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-PCIE-40GB", "Tesla-V100-SXM2-16GB"]
    assert gpu_products("a100", cluster) == ("NVIDIA-A100-PCIE-40GB", "NVIDIA-A100-SXM4-80GB")
    assert gpu_products("NVIDIA A100-SXM4-80GB") == ("NVIDIA-A100-SXM4-80GB",)
    with pytest.raises(SpecError, match="no node of the cluster has a GPU of model H100") as info:
        gpu_products("H100", cluster)
    assert "Tesla-V100-SXM2-16GB" in (info.value.hint or "")


def test_quantities() -> None:
    assert manifests.quantity_bytes(3 * (1 << 20)) == "3Mi" and manifests.quantity_bytes(1000) == "1000"
    assert manifests.quantity_cpu(0.5) == "500m" and manifests.quantity_cpu(4) == "4"


def test_bad_job_descriptions_are_refused() -> None:
    with pytest.raises(SpecError, match="nodes must be at least 1"):
        KubeJob(run_id="r", job_id="j", workflow="w", image=IMAGE, command=AGENT, torchrun=Torchrun(0, 1))
    with pytest.raises(SpecError, match="asks for no GPU"):
        KubeJob(run_id="r", job_id="j", workflow="w", image=IMAGE, command=AGENT, gpu_products=("A100",))
