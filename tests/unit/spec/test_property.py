"""Random and mutated YAML fed to the loader only ever gives models or the project's own error type."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dtrun.errors import DtrunError
from dtrun.plan import build_plan
from dtrun.spec import Project, Spec, load_spec
from tests.unit.spec.helpers import FIXTURES

SEEDS = [p.read_text() for p in sorted(FIXTURES.glob("*/.d*/workflows.yaml"))]
KEYS = ["name", "provider", "commands", "deps", "depends-on", "python", "file", "args", "image", "env",
        "artifacts", "resources", "gpu", "memory", "ports", "nodes", "secrets", "variables", "workflows", "tag",
        "workflow", "path", "mount", "count"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=True),
    st.sampled_from([float("inf"), float("-inf"), float("nan"), -1, 0, 10**30, 1.5]), st.sampled_from(
        ["bash", "python", "docker", "torchrun", "lab", "x", ":tag", "a:b", "o/r/w", "${{ x }}", "${{ run.args }}",
         "${{ secrets.K }}", "${{", "64GB", "3.10", "NAME=v", "", " ", "a/b/c:d"]),
    st.text(max_size=12))
TREES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=5)), max_leaves=25)
PROPERTIES = ["help", "deps", "depends-on", "commands", "python", "python_install", "requirements", "cuda", "file",
              "args", "image", "entrypoint", "registry_auth", "env", "working_dir", "artifacts", "ports", "cache",
              "nodes", "secrets", "environment", "version", "script", "python_script"]
RESOURCES = st.dictionaries(st.sampled_from(["gpu", "memory", "shm_size", "cpu", "interruptible", "local"]),
                            st.one_of(SCALARS, TREES), max_size=4)
#: Workflows that are right in shape, with random values in the places where values go.
WORKFLOWS = st.builds(
    lambda name, provider, props, resources: {"name": name, "provider": provider, **props,
                                              **({"resources": resources} if resources else {})},
    st.sampled_from(["a", "b", "c"]), st.sampled_from(["bash", "python", "docker", "torchrun", "lab", "code"]),
    st.dictionaries(st.sampled_from(PROPERTIES), st.one_of(SCALARS, TREES), max_size=6),
    st.one_of(st.none(), RESOURCES))
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load(files: dict[str, str]) -> Spec | None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text, encoding="utf-8")
        try:
            spec = load_spec(Project(git_root=root, root=root))
        except DtrunError as exc:
            assert str(exc)  # the error can be shown
            return None
        for name in spec.workflows:
            with contextlib.suppress(DtrunError):
                build_plan(spec, name, run_args=["-x", "a b"], run_name="r-1")
        return spec


@SETTINGS
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    _load({".dtrun/workflows.yaml": text, ".dtrun/variables.yaml": text[::-1]})


@SETTINGS
@given(st.lists(TREES, max_size=4), TREES)
def test_random_structures(workflows: list[Any], variables: Any) -> None:
    _load({".dtrun/workflows.yaml": yaml.safe_dump({"workflows": workflows}),
           ".dtrun/variables.yaml": yaml.safe_dump({"variables": variables})})


@SETTINGS
@given(st.lists(WORKFLOWS, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "x"]),
                                                          st.dictionaries(st.text(max_size=5), SCALARS, max_size=3),
                                                          max_size=2))
def test_well_shaped_workflows_with_random_values(workflows: list[Any], variables: Any) -> None:
    _load({".dtrun/workflows.yaml": yaml.safe_dump({"workflows": workflows}),
           ".dtrun/variables.yaml": yaml.safe_dump({"variables": variables})})


@SETTINGS
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.sampled_from(["delete", "insert", "swap", "dup"]),
                                                   st.integers(0, 10**6), st.text(max_size=4)), min_size=1,
                                        max_size=5))
def test_mutated_seed_files(seed: str, mutations: list[tuple[str, int, str]]) -> None:
    text = seed
    for kind, where, insert in mutations:
        at = where % (len(text) + 1)
        lines = text.splitlines(keepends=True)
        if kind == "delete":
            text = text[:at] + text[at + 1:]
        elif kind == "insert":
            text = text[:at] + insert + text[at:]
        elif kind == "swap" and len(lines) > 1:
            i = where % (len(lines) - 1)
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
            text = "".join(lines)
        elif kind == "dup" and lines:
            i = where % len(lines)
            text = "".join([*lines[: i + 1], lines[i], *lines[i + 1:]])
    _load({".dstack/workflows.yaml": text})
