"""`KubernetesBackend` (the engine-facing `AgentJobBackend`) against the API server emulator over real HTTP.

The emulator plays the scheduler and kubelet (no agent runs in it), so these tests check what is the
backend's own: the spec -> objects mapping it submits, the queue read back (pending reasons, phases, the
engine's labels for `find`), the graceful stop, and an OOM-killed pod reported as out of memory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dtrun.backends.agent import AgentHandle, AgentJobBackend
from dtrun.backends.base import EXITED, LABEL, RUNNING, AgentBackend, AgentJobSpec, Backend
from dtrun.backends.kubernetes.api import KubeApi, Retry
from dtrun.backends.kubernetes.backend import KubernetesBackend
from dtrun.backends.kubernetes.mapping import LABELS_ANNOTATION
from dtrun.backends.kubernetes.settings import KubeSettings
from dtrun.backends.registry import create_backend
from dtrun.config import Settings
from dtrun.engine.dryrun import render
from dtrun.errors import DtrunError, SpecError
from dtrun.providers.torchrun_launch import Torchrun
from tests.unit.backends.kubernetes.fake_apiserver import UNSCHEDULABLE, FakeApiServer

pytest.importorskip("kubernetes", reason="the backend test needs the `kubernetes` client (dtrun[kubernetes])")


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    fake = FakeApiServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def backend(server: FakeApiServer, tmp_path: Path) -> KubernetesBackend:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "emu", "cluster": {"server": server.url}}],
        "users": [{"name": "me", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "test", "context": {"cluster": "emu", "user": "me", "namespace": "ml"}}],
    }))
    settings = Settings(store=str(tmp_path / "store"))
    kube = KubeSettings(kubeconfig=str(kubeconfig), stop_grace=7)
    made = KubernetesBackend(settings, kube, api=KubeApi(kubeconfig=str(kubeconfig),
                                                          retry=Retry(attempts=3, base_s=0.05, cap_s=0.2)))
    made.poll = 0.05
    return made


def _spec(job_id: str = "j1", **changes: object) -> AgentJobSpec:
    labels = {LABEL: "1", f"{LABEL}.run": "r1", f"{LABEL}.job": job_id, f"{LABEL}.workflow": "train",
              f"{LABEL}.store": "s1", f"{LABEL}.artifacts": json.dumps([["out", "/workspace/out"]])}
    values: dict[str, object] = dict(name="dtrun-r1-train", run="r1", job_id=job_id, workflow="train",
                                     image="dtrun/agent:abc", labels=labels, manifest='{"version":1}',
                                     secrets={"TOKEN": "s3cr3t"}, working_dir="/workspace", cpus=1.0)
    values.update(changes)
    return AgentJobSpec(**values)  # type: ignore[arg-type]


def _wait_for(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_registry_builds_it_without_contacting_a_cluster(tmp_path: Path) -> None:
    settings = Settings(store=str(tmp_path), options={"kubernetes.namespace": "ml", "kubernetes.context": "gpu"})
    made = create_backend(settings, name="kubernetes")
    assert isinstance(made, KubernetesBackend) and isinstance(made, Backend) and isinstance(made, AgentBackend)
    assert made.host == "kubernetes (gpu, namespace ml)" and "api" not in made.__dict__
    with pytest.raises(DtrunError, match=r"unknown setting 'kubernetes\.namspace'"):
        create_backend(Settings(store=str(tmp_path), options={"kubernetes.namspace": "x"}), name="kubernetes")


def test_launch_creates_the_job_with_its_secret_and_finds_it_by_the_engines_labels(
        server: FakeApiServer, backend: KubernetesBackend) -> None:
    server.outcome[backend.job_name(_spec())] = "run"
    said: list[str] = []
    handle = backend.launch(_spec(), notify=said.append)
    job = server.get("Job", "ml", handle.name)
    assert job is not None and said == [f"  submitted train as Kubernetes Job ml/{handle.name} (dtrun/agent:abc)"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "dtrun.agent"]
    assert {"name": "DTRUN_AGENT_MANIFEST", "value": '{"version":1}'} in container["env"]
    sent = [r.body for r in server.calls("POST", "/secrets")]
    assert [b["stringData"] for b in sent] == [{"TOKEN": "s3cr3t"}]  # the one place the value travels
    assert "s3cr3t" not in json.dumps(job)
    _wait_for(lambda: backend.phase(handle) == RUNNING)
    found = backend.find({f"{LABEL}.run": "r1", f"{LABEL}.store": "s1"})
    assert [(h.name, h.labels) for h in found] == [(handle.name, _spec().labels)]
    assert backend.find({f"{LABEL}.run": "other"}) == []
    again = backend.launch(_spec())  # a client killed after submitting: the same Job, not a second one
    assert again.name == handle.name and len(server.calls("POST", "/jobs")) == 2


def test_a_pending_job_says_why_it_waits(server: FakeApiServer, backend: KubernetesBackend) -> None:
    spec = _spec(gpus=2)
    server.outcome[backend.job_name(spec)] = "unschedulable"
    handle = backend.launch(spec)
    _wait_for(lambda: backend.pending_reason(handle) is not None)
    assert backend.queued(handle) and backend.phase(handle) == RUNNING  # queued: not to be removed
    assert backend.pending_reason(handle) == f"not scheduled: {UNSCHEDULABLE}"


def test_stop_is_a_graceful_delete_of_the_pods_with_the_grace_period(server: FakeApiServer,
                                                                    backend: KubernetesBackend) -> None:
    server.outcome[backend.job_name(_spec())] = "run"
    handle = backend.launch(_spec())
    _wait_for(lambda: backend.phase(handle) == RUNNING)
    backend.stop(handle, grace=12)
    pod_deletes = server.calls("DELETE", "/pods/")
    assert pod_deletes and all(r.query.get("gracePeriodSeconds") == ["12"] for r in pod_deletes)
    assert server.get("Job", "ml", handle.name) is None
    assert backend.lookup(handle) is None  # gone: `wait` then reads the agent's record


def test_an_oom_killed_job_is_out_of_memory(server: FakeApiServer, backend: KubernetesBackend) -> None:
    server.outcome[backend.job_name(_spec())] = "oom"
    handle = backend.launch(_spec(memory=1 << 30))
    result = backend.wait(handle)  # no agent ran in the emulator: the queue's word is all there is
    assert result.oom_killed and result.code == 137
    assert backend.phase(handle) == EXITED


def test_a_dry_run_masks_secrets_and_needs_no_cluster(tmp_path: Path) -> None:
    offline = KubernetesBackend(Settings(store=str(tmp_path)), KubeSettings(namespace="ml", registry="reg:5000/team"))
    objects = offline.dry_run(_spec(torchrun=Torchrun(nodes=2, nproc_per_node=4), gpus=1, gpu_name="A100"))
    assert [o["kind"] for o in objects] == ["Job", "Secret", "Service"]
    job, secret, _ = objects
    assert secret["stringData"] == {"TOKEN": "***"}
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "reg:5000/team/agent:abc"
    assert json.loads(job["metadata"]["annotations"][LABELS_ANNOTATION]) == _spec().labels
    assert "api" not in offline.__dict__
    text = render(objects, "yaml")
    assert "s3cr3t" not in text and [d["kind"] for d in yaml.safe_load_all(text)] == ["Job", "Secret", "Service"]
    assert json.loads(render(objects, "json"))["kind"] == "List"


def test_a_two_node_job_is_an_indexed_job_behind_a_headless_service(server: FakeApiServer,
                                                                    backend: KubernetesBackend) -> None:
    spec = _spec(torchrun=Torchrun(nodes=2, nproc_per_node=1))
    server.outcome[backend.job_name(spec)] = "run"
    handle = backend.launch(spec)
    job = server.get("Job", "ml", handle.name)
    assert job is not None and job["spec"]["completionMode"] == "Indexed" and job["spec"]["parallelism"] == 2
    assert server.get("Service", "ml", handle.name) is not None
    _wait_for(lambda: len(backend.api.pods(backend._handle_job(handle))) == 2)


def test_an_agent_backend_refuses_nodes_it_does_not_start(tmp_path: Path) -> None:
    class OneNode(AgentJobBackend):
        host = "one-node cluster"

    with pytest.raises(SpecError, match="asks for 2 nodes, which one-node cluster does not run yet"):
        OneNode(Settings(store=str(tmp_path))).launch(_spec(torchrun=Torchrun(nodes=2, nproc_per_node=1)))


def test_a_handle_is_enough_to_find_the_objects_again(backend: KubernetesBackend) -> None:
    handle = AgentHandle("x", "x", _spec().labels)
    assert backend._handle_job(handle).name == backend.job_name(_spec())
