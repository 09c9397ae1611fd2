"""Jobs on a real cluster through dtrun's manifests and API layer: logs, exit status, OOM, 2-node torchrun."""

from __future__ import annotations

from pathlib import Path

from dtrun.backends.kubernetes.api import KubeApi
from dtrun.backends.kubernetes.job import KubeJob, Torchrun
from tests.k8s_live.conftest import SESSION, image

ALLREDUCE = (Path(__file__).parent.parent / "torchrun" / "allreduce.py").read_text()


def _job(live_api: KubeApi, workflow: str, command: list[str], **fields: object) -> KubeJob:
    return KubeJob(run_id=f"live-{SESSION}", job_id=f"{workflow}-{SESSION}", workflow=workflow, image=image(),
                   command=tuple(command), namespace=live_api.namespace, ttl_s=600, timeout_s=900,
                   **fields)  # type: ignore[arg-type]


def test_a_job_runs_and_its_logs_come_back(live_api: KubeApi, submitted: list[KubeJob]) -> None:
    job = _job(live_api, "hello", ["sh", "-c", 'echo "hello from $HOSTNAME"; echo "secret is $TOKEN"'],
               secrets={"TOKEN": "live-secret"}, cpu=0.5, memory=512 << 20, shm_size=64 << 20)
    submitted.append(job)
    live_api.submit(job)
    assert live_api.submit(job)  # idempotent
    assert live_api.wait(job, timeout_s=600).phase == "succeeded"
    lines = list(live_api.logs(job))
    assert any(line.endswith("secret is live-secret") for line in lines)


def test_out_of_memory_is_reported(live_api: KubeApi, submitted: list[KubeJob]) -> None:
    eat = "import time; b = [bytearray(16 << 20) for _ in range(64)]; time.sleep(5)"
    job = _job(live_api, "oom", ["python", "-c", eat], memory=128 << 20)
    submitted.append(job)
    live_api.submit(job)
    state = live_api.wait(job, timeout_s=600)
    assert state.phase == "failed" and state.out_of_memory, state


def test_a_two_node_torchrun_all_reduces(live_api: KubeApi, submitted: list[KubeJob]) -> None:
    script = 'printf %s "$ALLREDUCE_PY" > /tmp/allreduce.py && exec torchrun /tmp/allreduce.py'
    job = _job(live_api, "ddp", ["sh", "-c", script], env={"ALLREDUCE_PY": ALLREDUCE, "EXPECT_WORLD_SIZE": "4"},
               torchrun=Torchrun(nodes=2, nproc_per_node=2), cpu=1, memory=2 << 30)
    submitted.append(job)
    live_api.submit(job)
    assert live_api.wait(job, timeout_s=900).phase == "succeeded"
    for node in (0, 1):
        text = "\n".join(live_api.logs(job, node=node))
        assert "sum of ranks 6 == 6 ok" in text, text
