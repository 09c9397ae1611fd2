"""The Kubernetes backend end to end through the engine, against the API server emulator whose kubelet
runs each pod as a real container on the Docker daemon (the image dtrun built, the in-job agent, a
folder store shared with the "node" at the same path).

What is real: the engine, the agent path, the official client over HTTP, the objects created, the
image and the agent in it, logs and outputs through the store, the graceful stop. What is emulated:
the API server, the Job controller and the kubelet's bookkeeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dtrun.api import Session
from dtrun.backends.kubernetes.api import KubeApi, Retry
from dtrun.backends.kubernetes.backend import KubernetesBackend
from dtrun.backends.kubernetes.settings import KubeSettings
from dtrun.config import Settings
from dtrun.engine.events import Event
from dtrun.store import State
from tests.conftest import BASE_IMAGE, SESSION
from tests.unit.backends.kubernetes.fake_apiserver import FakeApiServer

pytest.importorskip("kubernetes", reason="needs the `kubernetes` client (dtrun[kubernetes])")
pytestmark = pytest.mark.xdist_group("images")
ALLREDUCE = (Path(__file__).parent.parent / "torchrun" / "allreduce.py").read_text()


class DockerKubelet:
    """Runs a pod's one container with `docker run`: its image, command and env (secrets resolved from
    the Secret dtrun created), the store folder mounted where the client has it."""

    def __init__(self, client: Any, server: FakeApiServer, store: Path) -> None:
        self.client, self.server, self.store = client, server, store
        self.containers: dict[str, Any] = {}
        self.networks: dict[str, Any] = {}
        self.lock = threading.Lock()  # a job's pods start at once and share its network

    def _secret(self, name: str) -> dict[str, str]:
        bodies = [r.body for r in self.server.calls("POST", "/secrets") if r.body["metadata"]["name"] == name]
        return dict(bodies[-1]["stringData"]) if bodies else {}

    def run(self, pod: dict[str, Any]) -> int:
        spec = pod["spec"]["containers"][0]
        env: dict[str, str] = {}
        annotations = pod["metadata"].get("annotations") or {}
        for item in spec.get("env") or []:
            source = item.get("valueFrom") or {}
            if "secretKeyRef" in source:
                env[item["name"]] = self._secret(source["secretKeyRef"]["name"])[source["secretKeyRef"]["key"]]
            elif "fieldRef" in source:  # metadata.annotations['KEY'], the one field dtrun reads
                key = source["fieldRef"]["fieldPath"].split("'")[1]
                env[item["name"]] = annotations[key]
            else:
                env[item["name"]] = item.get("value", "")
        name = pod["metadata"]["name"]
        container = self.client.containers.create(
            spec["image"], spec["command"], environment=env, name=f"dtrun-kubelet-{SESSION}-{name}",
            labels={"dev.dtrun.test-session": SESSION}, volumes={str(self.store): {"bind": str(self.store)}})
        self.containers[name] = container
        job = pod["metadata"]["labels"]["job-name"]
        if pod["spec"].get("subdomain"):  # an Indexed Job's pod: `<job>-<index>.<subdomain>.<ns>.svc`
            network = self._network(job)
            index = annotations["batch.kubernetes.io/job-completion-index"]
            network.connect(container, aliases=[f"{job}-{index}.{pod['spec']['subdomain']}."
                                                f"{pod['metadata']['namespace']}.svc"])
            self.client.networks.get("bridge").disconnect(container)
        container.start()
        return int(container.wait()["StatusCode"])

    def _network(self, job: str) -> Any:
        with self.lock:
            if job not in self.networks:
                self.networks[job] = self.client.networks.create(f"dtrun-kubelet-{SESSION}-{job}",
                                                                 labels={"dev.dtrun.test-session": SESSION})
            return self.networks[job]

    def stop(self, pod: dict[str, Any], grace: int) -> None:
        container = self.containers.get(pod["metadata"]["name"])
        if container is not None:
            container.stop(timeout=grace)

    def remove(self) -> None:
        for container in self.containers.values():
            container.remove(force=True)
        for network in self.networks.values():
            network.remove()


@pytest.fixture
def cluster(tmp_path: Path, docker_client: Any, make_project: Any, data_dir: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeApiServer, Session, list[Event], Path]]:
    monkeypatch.setenv("DTRUN_DATA_DIR", str(data_dir))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    store = tmp_path / "store"
    store.mkdir()
    server = FakeApiServer().start()
    kubelet = DockerKubelet(docker_client, server, store)
    server.kubelet = kubelet
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emu",
        "clusters": [{"name": "emu", "cluster": {"server": server.url}}],
        "users": [{"name": "me", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "me", "namespace": "ml"}}]}))
    settings = Settings(store=str(store), base_image=BASE_IMAGE)
    kube = KubeSettings(kubeconfig=str(kubeconfig), stop_grace=20)
    backend = KubernetesBackend(settings, kube, api=KubeApi(kubeconfig=str(kubeconfig), retry=Retry(attempts=3)))
    backend.poll = 0.2
    events: list[Event] = []
    project = make_project({".dtrun/workflows.yaml": WORKFLOWS, "allreduce.py": ALLREDUCE})
    yield server, Session(project, settings=settings, listener=events.append, backend=backend), events, project
    server.stop()
    kubelet.remove()


WORKFLOWS = """workflows:
  - name: train
    provider: bash
    commands:
      - echo "hello from the pod on $(hostname)"
      - mkdir -p out && echo 42 > out/answer.txt
    artifacts: [out]
  - name: ddp
    provider: torchrun
    python_install: system
    file: allreduce.py
    nodes: 2
    nproc_per_node: 2
    env: [EXPECT_WORLD_SIZE=4]
  - name: long
    provider: bash
    commands:
      - mkdir -p out && echo partial > out/progress.txt
      - echo started
      - sleep 300
    artifacts: [out]
"""


@pytest.mark.timeout(900)
def test_a_job_runs_through_the_agent_and_its_outputs_come_back(cluster: Any) -> None:
    server, session, events, _ = cluster
    result = session.run("train")
    text = b"".join(e.data for e in events).decode()
    assert result.exit_code == 0, [e.text for e in events] + [text]
    assert "hello from the pod on " in text
    [job] = result.jobs
    assert job.state == State.DONE and [a.path for a in job.artifacts] == ["out"]
    assert len(server.calls("POST", "/jobs")) == 1
    assert server.get("Job", "ml", server.calls("POST", "/jobs")[0].body["metadata"]["name"]) is None  # released


@pytest.mark.timeout(900)
def test_stop_is_a_graceful_delete_and_the_agent_saves_the_outputs(cluster: Any) -> None:
    server, session, events, _ = cluster
    done: list[Any] = []
    runner = threading.Thread(target=lambda: done.append(session.run("long")), daemon=True)
    runner.start()
    deadline = time.monotonic() + 600
    while b"started" not in b"".join(e.data for e in events):
        assert time.monotonic() < deadline and runner.is_alive(), [e.text for e in events]
        time.sleep(0.5)
    [run] = [r for r, _ in session.status()]
    session.stop(run.name)
    runner.join(120)
    assert done, "the run did not end after its stop"
    [job] = done[0].jobs
    assert job.state == State.STOPPED, (job.state, job.message)
    assert [a.path for a in job.artifacts] == ["out"]
    deletes = server.calls("DELETE", "/pods/")
    assert deletes and deletes[0].query.get("gracePeriodSeconds")


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_a_two_node_torchrun_meets_through_the_headless_service_name(cluster: Any) -> None:
    """The torch image (built by test_torchrun.py, cached) plus the agent layer; two pods of two processes."""
    server, session, events, _ = cluster
    result = session.run("ddp")
    text = b"".join(e.data for e in events).decode()
    assert result.exit_code == 0, [e.text for e in events] + [text]
    assert "rank 0/4 (node 0, local 0): sum of ranks 6 == 6 ok" in text  # node 0's log is the job's
    [job] = result.jobs
    other = session.store.job_path(job.id, "logs-node1.txt")
    assert "rank 3/4 (node 1, local 1): sum of ranks 6 == 6 ok" in session.store.read_bytes(other).decode()
    created = server.calls("POST", "/jobs")[0].body
    assert created["spec"]["completionMode"] == "Indexed" and server.calls("POST", "/services")
