"""The jobs whose manifests are kept as golden files (shared by the manifest and API tests)."""

from __future__ import annotations

from dtrun.backends.kubernetes.job import KubeJob, Torchrun

GiB = 1 << 30
AGENT = ("python", "-m", "dtrun.agent", "--manifest-env", "DTRUN_AGENT_MANIFEST")
IMAGE = "registry.example.com/team/dtrun-images:3f9a0c1b2d4e"

CASES: dict[str, KubeJob] = {
    "cpu": KubeJob(run_id="quick-otter-1", job_id="j0f3c2a9", workflow="prepare", image=IMAGE,
                   command=AGENT, namespace="ml", env={"DTRUN_AGENT_MANIFEST": "{}"}, cpu=2, memory=4 * GiB,
                   timeout_s=3600),
    "gpu": KubeJob(run_id="quick-otter-1", job_id="j71bd04e", workflow="train", image=IMAGE, command=AGENT,
                   namespace="ml", cpu=7.5, memory=60 * GiB, gpu_count=4,
                   gpu_products=("NVIDIA-A100-SXM4-80GB",), timeout_s=6 * 3600),
    "secrets-shm": KubeJob(run_id="calm-heron-3", job_id="j2266aa1", workflow="Fine tune (LoRA)", image=IMAGE,
                           command=AGENT, env={"WANDB_PROJECT": "lora"},
                           secrets={"WANDB_API_KEY": "wandb-secret-value", "HF_TOKEN": "hf-secret-value"},
                           memory=16 * GiB, shm_size=8 * GiB, image_pull_secret="registry-creds"),
    "torchrun-2-nodes": KubeJob(run_id="swift-lynx-2", job_id="j9c01e77", workflow="ddp", image=IMAGE,
                                command=AGENT, namespace="ml", gpu_count=2, memory=32 * GiB, shm_size=GiB,
                                torchrun=Torchrun(nodes=2, nproc_per_node=2), timeout_s=86400,
                                gpu_products=("NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-SXM5-80GB")),
}
