"""The Kubernetes API layer against an API server emulator over real HTTP on loopback.

The official client does the talking (kubeconfig, HTTP, JSON); the emulator plays the API server, the
Job controller and the kubelet for scripted outcomes, and injects faults. Each test asserts what dtrun
would report and what reached the server.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from dtrun.backends.kubernetes import manifests
from dtrun.backends.kubernetes.api import ClusterError, KubeApi, Retry
from dtrun.backends.kubernetes.job import KubeJob
from dtrun.backends.kubernetes.status import JobState
from tests.unit.backends.kubernetes.cases import CASES
from tests.unit.backends.kubernetes.fake_apiserver import UNSCHEDULABLE, FakeApiServer

pytest.importorskip("kubernetes", reason="the contract test needs the `kubernetes` client (dtrun[kubernetes])")


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    fake = FakeApiServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def api(server: FakeApiServer, tmp_path: Path) -> KubeApi:
    """The client configured the way users configure it: a kubeconfig with a context and its namespace."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "emu", "cluster": {"server": server.url}}],
        "users": [{"name": "me", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "test", "context": {"cluster": "emu", "user": "me", "namespace": "ml"}}],
    }))
    return KubeApi(kubeconfig=str(kubeconfig), retry=Retry(attempts=4, base_s=0.05, cap_s=0.5))


def _job(case: str, **changes: object) -> KubeJob:
    return replace(CASES[case], **changes)  # type: ignore[arg-type]


def test_create_watch_to_completion_and_logs(server: FakeApiServer, api: KubeApi) -> None:
    job = _job("cpu")
    server.step_s = 1.0  # long enough on a loaded machine for the running phase to be seen
    server.logs[job.name] = ["2026-11-30T07:00:02.000000001Z epoch 1 loss 0.5",
                             "2026-11-30T07:00:03.000000001Z done"]
    assert api.namespace == "ml"
    uid = api.submit(job)
    seen: list[JobState] = []
    final = api.wait(job, timeout_s=20, on_change=seen.append)
    assert final == JobState("succeeded", exit_code=0)
    assert [s.phase for s in seen][-1] == "succeeded" and "running" in [s.phase for s in seen]
    created = server.calls("POST", "/apis/batch/v1/namespaces/ml/jobs")
    assert len(created) == 1 and created[0].body == manifests.job_manifest(job)
    assert server.get("Job", "ml", job.name)["metadata"]["uid"] == uid  # type: ignore[index]
    assert list(api.logs(job)) == server.logs[job.name]
    log_call = server.calls("GET", "/log")[0]
    assert log_call.query["container"] == ["job"] and log_call.query["timestamps"] == ["true"]
    assert server.calls("GET", "/jobs") and any(r.query.get("watch") == ["true"] for r in server.requests)


def test_a_resubmitted_job_is_found_not_duplicated(server: FakeApiServer, api: KubeApi) -> None:
    job = _job("cpu")
    server.outcome[job.name] = "run"
    first = api.submit(job)
    again = api.submit(job)
    assert first == again
    statuses = [r.status for r in server.calls("POST", "/jobs")]
    assert statuses == [201, 409]
    assert len([k for k in server.objects if k[0] == "Job"]) == 1
    stranger = _job("cpu", run_id="another-run-9")  # same name forced below, other labels
    server.objects[("Job", "ml", stranger.name)] = {**server.objects[("Job", "ml", job.name)],
                                                     "metadata": {"name": stranger.name, "uid": "u",
                                                                  "labels": {"team": "x"}}}
    with pytest.raises(ClusterError, match="already exists in namespace ml and is not this dtrun job's"):
        api.submit(stranger)


def test_a_500_is_retried_with_backoff_and_a_lasting_one_is_a_clear_error(server: FakeApiServer,
                                                                           api: KubeApi) -> None:
    job = _job("cpu")
    server.faults += [("POST", 500), ("POST", 500)]
    api.submit(job)
    posts = server.calls("POST", "/jobs")
    assert [r.status for r in posts] == [500, 500, 201]
    gaps = [b.at - a.at for a, b in itertools.pairwise(posts)]
    assert gaps[0] >= 0.025 and gaps[1] >= 0.05  # base 0.05s with jitter in [0.5, 1], then doubled
    server.faults += [("GET", 503)] * 4
    with pytest.raises(ClusterError, match=r"kept failing \(503 .*\) after 4 attempts"):
        api.state(job)


def test_an_oom_killed_pod_is_reported_as_out_of_memory(server: FakeApiServer, api: KubeApi) -> None:
    job = _job("cpu")
    server.outcome[job.name] = "oom"
    api.submit(job)
    final = api.wait(job, timeout_s=20)
    assert final.phase == "failed" and final.out_of_memory and final.exit_code == 137
    assert final.reason == "out of memory: the container was OOM-killed (memory limit 4Gi)"


def test_a_pending_pod_says_why(server: FakeApiServer, api: KubeApi) -> None:
    job = _job("gpu")
    server.outcome[job.name] = "unschedulable"
    api.submit(job)
    state = api.wait(job, timeout_s=1)
    assert state.phase == "pending" and not state.finished
    assert state.reason == f"not scheduled: {UNSCHEDULABLE}"
    assert "Insufficient nvidia.com/gpu" in state.reason


def test_secrets_exist_before_any_pod_and_go_with_the_job(server: FakeApiServer, api: KubeApi) -> None:
    job = _job("secrets-shm", namespace="ml")
    server.outcome[job.name] = "run"
    uid = api.submit(job)
    order = [(r.method, r.path.rsplit("/", 2)[-1]) for r in server.requests if r.method != "GET"]
    assert order == [("POST", "jobs"), ("POST", "secrets"), ("PATCH", job.name)]
    assert server.calls("POST", "/jobs")[0].body["spec"]["suspend"] is True
    secret = server.calls("POST", "/secrets")[0].body
    assert secret["metadata"]["ownerReferences"][0]["uid"] == uid
    assert server.calls("PATCH", job.name)[0].content_type == "application/merge-patch+json"
    api.wait(job, timeout_s=0.5)
    assert api.pods(job), "the pods start once the Job is resumed"
    api.delete(job)
    assert not server.objects, "the Secret is deleted with the Job"


def test_a_two_node_torchrun_gets_its_service_and_one_pod_per_node(server: FakeApiServer, api: KubeApi) -> None:
    job = _job("torchrun-2-nodes")
    server.logs[job.name] = ["2026-11-30T07:00:02Z rank sum ok"]
    api.submit(job)
    assert server.calls("POST", "/services")[0].body["spec"]["clusterIP"] == "None"
    assert api.wait(job, timeout_s=20).phase == "succeeded"
    pods = api.pods(job)
    assert [p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods] == ["0", "1"]
    assert list(api.logs(job, node=1)) == server.logs[job.name]
    with pytest.raises(ClusterError, match="no pod for node 2"):
        list(api.logs(job, node=2))


def test_stop_is_a_graceful_delete_with_the_grace_period(server: FakeApiServer, api: KubeApi) -> None:
    job = _job("cpu")
    server.outcome[job.name] = "run"
    api.submit(job)
    assert api.wait(job, timeout_s=0.6).phase == "running"
    api.delete(job, grace_s=45)
    pod_deletes = server.calls("DELETE", "/pods/")
    assert pod_deletes and all(r.query["gracePeriodSeconds"] == ["45"] and r.body["gracePeriodSeconds"] == 45
                               for r in pod_deletes)
    job_delete = server.calls("DELETE", f"/jobs/{job.name}")[0]
    assert job_delete.query["propagationPolicy"] == ["Background"] and job_delete.body["gracePeriodSeconds"] == 45
    assert server.get("Job", "ml", job.name) is None
    api.delete(job)  # stopping what is gone is not an error


def test_no_cluster_configured_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ClusterError, match="no Kubernetes cluster is configured"):
        KubeApi()
    with pytest.raises(ClusterError, match="no context nope"):
        config = tmp_path / "kc"
        config.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "a",
                                          "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                                          "users": [{"name": "u", "user": {}}],
                                          "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u"}}]}))
        KubeApi(kubeconfig=str(config), context="nope")


def test_gpu_models_come_from_the_nodes_when_dtrun_may_list_them(server: FakeApiServer, api: KubeApi) -> None:
    label = "nvidia.com/gpu.product"
    server.nodes = [{"metadata": {"name": f"n{i}", "labels": {label: product}}}
                    for i, product in enumerate(["NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3",
                                                 "NVIDIA-A100-SXM4-80GB"])]
    server.nodes.append({"metadata": {"name": "cpu-node", "labels": {}}})
    assert api.gpu_products() == ["NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3"]
    assert server.calls("GET", "/api/v1/nodes")[0].query["labelSelector"] == [label]
    server.nodes = None
    assert api.gpu_products() is None  # a namespace-scoped role: the GPU name is used as the label value
