"""Every workflow form of the seed documents and of real dstack files loads into the expected model."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtrun.spec.loader import workflow_files
from dtrun.spec.models import Dep, parse_size
from tests.unit.spec.helpers import fixture, load_fixture, project


def test_seed000_tag_dicts_python_number_artifact_paths_and_resources() -> None:
    train = load_fixture("seed000").get("train")
    assert train.provider == "bash"
    assert train.python == "3.10"  # not 3.1
    assert train.deps == [Dep(tag="mnist_data"), Dep(tag="mnist_data", repo="dstackai/dstack-examples")]
    assert [a.path for a in train.artifacts] == ["checkpoint"]
    assert train.resources.interruptible is True
    assert train.resources.gpu_count == 1
    assert train.commands == ["pip install requirements.txt", "python mnist/train.py"]


def test_seed001_every_dep_string_form() -> None:
    spec = load_fixture("seed001")
    train = spec.get("train")
    assert [str(d) for d in train.deps] == [":some_tag", ":dstackai/dstack/some_tag", "some_workflow",
                                            "dstackai/dstack/some_workflow", "other_workflow"]
    assert train.deps[1] == Dep(tag="some_tag", repo="dstackai/dstack")
    assert train.deps[3] == Dep(workflow="some_workflow", repo="dstackai/dstack")
    assert train.deps[4] == Dep(workflow="other_workflow")
    # `deps` never run anything: they are inputs (a tag, or a workflow's last successful run).
    assert train.runtime_deps == []
    assert train.input_deps == train.deps
    assert [a.path for a in train.artifacts] == ["checkpoint"]
    assert spec.get("some_workflow").commands == ["echo hi"]


def test_seed002_python_provider_depends_on_and_variables() -> None:
    spec = load_fixture("seed002")
    download, train, pipeline = spec.get("download"), spec.get("train"), spec.get("pipeline")
    assert (download.provider, download.file, download.help) == ("python", "download.py",
                                                                 "Downloads the training data")
    assert train.depends_on == [Dep(workflow="download", tag="latest")]
    assert train.runtime_deps == []  # a tag dependency: uses the tagged run, runs nothing
    assert pipeline.runtime_deps == ["download"]
    assert spec.variables["train"] == {"batch-size": "64", "test-batch-size": "1000", "epochs": "1", "lr": "1.0",
                                       "gamma": "0.70", "seed": "1", "log-interval": "10"}
    # Defaults are substituted into the model that `dtrun list` and `dtrun validate` see.
    assert train.args == ["--batch-size", "64", "--lr=1.0"]


def test_all_four_places_merge_with_both_variables_files() -> None:
    proj = fixture("merged")
    spec = load_fixture("merged")
    assert sorted(spec.workflows) == ["a", "b", "c", "d"]
    assert [str(f.relative_to(proj.root)) for f in workflow_files(proj)] == [
        ".dtrun/workflows.yaml", ".dtrun/workflows/b.yaml", ".dstack/workflows.yaml", ".dstack/workflows/d.yml"]
    assert spec.variables == {"a": {"size": "big"}, "c": {"size": "small"}}


def test_every_property() -> None:
    spec = load_fixture("properties")
    shell = spec.get("shell")
    assert shell.commands == ["echo one\necho two\n"]
    assert shell.env == {"PLAIN": "value", "FROM_HOST": None, "WITH_EQUALS": "a=b"}
    assert shell.working_dir == "src"
    assert [(a.path, a.mount) for a in shell.artifacts] == [("data", False), ("checkpoints", True)]
    gpu = shell.resources.gpu
    assert gpu is not None and (gpu.name, gpu.count, gpu.memory) == ("A100", 2, 40 * 10**9)
    assert (shell.resources.memory, shell.resources.shm_size) == (64 * 10**9, 512 * 2**20)
    assert (shell.resources.cpu, shell.resources.interruptible, shell.resources.local) == (4, True, True)
    assert (shell.ports, shell.cache, shell.secrets, shell.cuda) == (2, ["~/.cache/pip", "data/cache"],
                                                                     ["WANDB_API_KEY"], "12.1")
    assert spec.get("mapping-env").env == {"DEBUG": "true", "COUNT": "3", "RATE": "0.50", "FROM_HOST": None}
    script = spec.get("script")
    assert (script.python, script.args, script.requirements, script.python_install) == (
        "3.9", ["--epochs", "3", "--name", "my run"], "requirements-train.txt", "system")
    distributed = spec.get("distributed")
    assert (distributed.provider, distributed.nodes, distributed.args, distributed.resources.gpu_count) == (
        "torchrun", 2, ["--epochs", "3"], 4)
    container = spec.get("container")
    auth = container.registry_auth
    assert auth is not None and (auth.username, auth.password) == ("me", "${{ secrets.REGISTRY_PASSWORD }}")
    assert (container.image, container.entrypoint) == ("ubuntu:22.04", ["/bin/bash", "-c"])
    assert "secrets.REGISTRY_PASSWORD" not in repr(auth)
    older = spec.get("older-docker")
    assert (older.provider, older.image) == ("docker", "busybox:latest")
    assert [spec.get(n).provider for n in ("jupyter", "nb", "ide")] == ["lab", "notebook", "code"]
    assert spec.get("jupyter").python == "3.11"


@pytest.mark.parametrize(("written", "expected"), [
    ("64GB", 64 * 10**9), ("512MiB", 512 * 2**20), ("1.5G", 1_500_000_000), ("2Gi", 2 * 2**30), ("100", 100),
    (1024, 1024), ("16 GB", 16 * 10**9), ("1kb", 1000),
])
def test_sizes(written: object, expected: int) -> None:
    assert parse_size(written) == expected


@pytest.mark.parametrize(("written", "expected"), [
    ("download:latest", Dep(workflow="download", tag="latest")),
    ("owner/repo/download:v1", Dep(workflow="download", tag="v1", repo="owner/repo")),
    (":owner/repo/tag", Dep(tag="tag", repo="owner/repo")),
    ({"workflow": "owner/repo/train"}, Dep(workflow="train", repo="owner/repo")),
    ({"workflow": "train", "tag": "best"}, Dep(workflow="train", tag="best")),
    ({"tag": "data", "repo": "owner/repo"}, Dep(tag="data", repo="owner/repo")),
])
def test_dep_forms(written: object, expected: Dep) -> None:
    assert Dep.validate(written) == expected


def test_empty_files_are_skipped(tmp_path: Path) -> None:
    from dtrun.spec import load_spec

    proj = project(tmp_path, {".dstack/workflows.yaml": "", ".dstack/variables.yaml": "",
                              ".dtrun/workflows/x.yaml": "workflows:\n  - name: x\n    provider: bash\n"
                                                         "    commands: [echo]\n"})
    assert list(load_spec(proj).workflows) == ["x"]


def test_older_dstack_property_names() -> None:
    spec = load_fixture("older")
    download = spec.get("download-model")
    assert (download.python, download.file, download.args, download.env) == (
        "3.10", "download_model.py", ["--model", "117M", "--dir", "my models"], {"PYTHONPATH": "src"})
    finetune = spec.get("finetune")
    assert (finetune.file, finetune.args, finetune.nodes, finetune.resources.gpu_count) == (
        "finetune.py", ["--epochs", "1"], 2, 1)
    assert spec.get("serve").env == {"PORT": "8080"}
