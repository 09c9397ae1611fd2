"""What dtrun would build or create, shown without doing it: `images build --dockerfile`, `run --dry-run`."""

from __future__ import annotations

from typing import Any

from tests.conftest import DtrunRunner

WORKFLOWS = ("workflows:\n  - name: prep\n    provider: bash\n    commands: [echo prep]\n"
             "  - name: train\n    provider: bash\n    depends-on: [prep]\n    commands: [echo train]\n"
             "  - name: pinned\n    provider: docker\n    image: dtrun-local/busybox:latest\n    commands: ['true']\n")


def test_images_build_dockerfile_prints_each_image_once_and_builds_nothing(
        dtrun: DtrunRunner, make_project: Any, docker_client: Any) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS})
    shown = dtrun("images", "build", "train", "--dockerfile", cwd=root)
    assert shown.code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("# prep: dtrun/bash:") and lines[1].startswith("FROM ")
    assert "# train: the same image as prep" in lines
    tag = lines[0].split()[2].rstrip(",")
    built = dtrun("images", "build", "train", cwd=root, timeout=900)
    assert built.code == 0, built.output
    assert f"prep: {tag} (" in built.output  # the Dockerfile shown is the one the build uses (same tag)
    user = dtrun("images", "build", "pinned", "--dockerfile", cwd=root)
    assert user.stdout == "# pinned: runs the image dtrun-local/busybox:latest as it is (nothing is built)\n\n"


def test_images_build_dockerfile_refuses_rebuild(dtrun: DtrunRunner, make_project: Any) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS})
    both = dtrun("images", "build", "train", "--dockerfile", "--rebuild", cwd=root)
    assert both.code != 0 and "Traceback" not in both.output
    assert "--dockerfile prints what would be built; --rebuild builds" in both.output


def test_run_dry_run_prints_the_kubernetes_objects_without_a_cluster(
        dtrun: DtrunRunner, make_project: Any, docker_client: Any) -> None:
    import json

    import kubernetes_validate
    import yaml

    workflows = ("workflows:\n  - name: prep\n    provider: bash\n    commands: [echo prep]\n"
                 "  - name: train\n    provider: bash\n    depends-on: [prep]\n    secrets: [TOKEN]\n"
                 "    commands: [echo train]\n    artifacts: [model]\n"
                 "    resources: {shm_size: 1GB, memory: 2GB, gpu: {name: A100, count: 1}}\n")
    root = make_project({".dtrun/workflows.yaml": workflows})
    assert dtrun("secrets", "add", "TOKEN", cwd=root, input="hunter2-value\n").code == 0
    env = {"KUBECONFIG": str(root / "no-such-kubeconfig"), "DTRUN_KUBERNETES_NAMESPACE": "ml"}
    shown = dtrun("run", "train", "--backend", "kubernetes", "--dry-run", "-o", "yaml", cwd=root, env=env)
    assert shown.code == 0, shown.output
    assert "hunter2-value" not in shown.output
    docs = list(yaml.safe_load_all(shown.stdout))
    # a job that names no secrets gets them all, as at run time
    assert [(d["kind"], d["metadata"]["labels"]["dtrun.dev/workflow"]) for d in docs] == [
        ("Job", "prep"), ("Secret", "prep"), ("Job", "train"), ("Secret", "train")]
    for doc in docs:
        kubernetes_validate.validate(doc, "1.33.0", strict=True)
    train = docs[2]["spec"]["template"]["spec"]
    assert train["nodeSelector"] == {"nvidia.com/gpu.product": "A100"}
    assert docs[3]["stringData"] == {"TOKEN": "***"}
    manifest = json.loads(next(e["value"] for e in train["containers"][0]["env"]
                               if e["name"] == "DTRUN_AGENT_MANIFEST"))
    assert manifest["secrets"] == ["TOKEN"] and manifest["artifacts"][0]["path"] == "model"
    as_json = dtrun("run", "train", "--backend", "kubernetes", "--dry-run", "-o", "json", cwd=root, env=env)
    assert [i["kind"] for i in json.loads(as_json.stdout)["items"]] == ["Job", "Secret", "Job", "Secret"]
    assert not list(dtrun.store.rglob("runs/*.json")) and not list(dtrun.store.rglob("code/*.tar"))  # nothing ran


def test_dry_run_is_refused_where_it_means_nothing(dtrun: DtrunRunner, make_project: Any) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS})
    docker = dtrun("run", "train", "--dry-run", cwd=root)
    assert docker.code != 0 and "--dry-run shows Kubernetes objects: pass --backend kubernetes" in docker.output
    loose = dtrun("run", "train", "-o", "yaml", cwd=root)
    assert loose.code != 0 and "-o yaml formats what --dry-run prints" in loose.output
    assert "Traceback" not in docker.output + loose.output
