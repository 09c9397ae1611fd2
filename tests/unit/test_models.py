from __future__ import annotations

import pytest

from dtrun.spec.models import Dep, Workflow, parse_size
from dtrun.spec.typed import ValidationError
from dtrun.spec.yamlpos import RawFloat


def wf(**kwargs: object) -> Workflow:
    return Workflow.validate({"name": "w", "provider": "bash", "commands": ["true"], **kwargs})


def test_python_written_as_a_number_keeps_its_digits() -> None:
    assert wf(python=RawFloat(3.1, "3.10")).python == "3.10"
    assert wf(python="3.9").python == "3.9"


@pytest.mark.parametrize(("text", "expected"), [
    ("64GB", 64 * 10**9), ("512MiB", 512 * 2**20), ("1.5G", 1_500_000_000), (1024, 1024), ("100", 100)])
def test_sizes(text: object, expected: int) -> None:
    assert parse_size(text) == expected


def test_bad_size_says_what_is_expected() -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


@pytest.mark.parametrize(("text", "expected"), [
    (":some_tag", Dep(tag="some_tag")),
    (":dstackai/dstack/some_tag", Dep(tag="some_tag", repo="dstackai/dstack")),
    ("download", Dep(workflow="download")),
    ("download:latest", Dep(workflow="download", tag="latest")),
    ("dstackai/dstack/some_workflow", Dep(workflow="some_workflow", repo="dstackai/dstack")),
])
def test_dependency_forms(text: str, expected: Dep) -> None:
    assert Dep.validate(text) == expected


def test_only_a_plain_workflow_is_a_runtime_dependency() -> None:
    assert Dep.validate("download").is_runtime
    assert not Dep.validate("download:latest").is_runtime
    assert not Dep.validate(":data").is_runtime


def test_env_forms() -> None:
    assert wf(env=["A=1", "B"]).env == {"A": "1", "B": None}
    assert wf(env={"A": 1, "B": True}).env == {"A": "1", "B": "true"}


def test_artifacts_as_strings_or_mappings() -> None:
    w = wf(artifacts=["data", {"path": "ckpt", "mount": True}])
    assert [(a.path, a.mount) for a in w.artifacts] == [("data", False), ("ckpt", True)]


def test_image_without_provider_means_docker() -> None:
    assert Workflow.validate({"name": "w", "image": "ubuntu"}).provider == "docker"


def test_unknown_property_is_refused() -> None:
    with pytest.raises(ValidationError):
        wf(comands=["x"])
