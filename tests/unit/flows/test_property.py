"""Random and mutated flows and manifests fed to the loader: a model or a positioned `DtrunError`, never
a traceback (the `SpecErrors(..., position=)` TypeError was one)."""

from __future__ import annotations

import contextlib
import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dtrun.errors import DtrunError
from dtrun.flows.expressions import Scope, render
from dtrun.flows.inputs import check_inputs
from dtrun.flows.loader import load_flow, manifest_from_text
from dtrun.flows.models import ActionManifest

FIXTURES = Path(__file__).parent / "fixtures"
FLOWS = sorted(p for p in FIXTURES.iterdir() if ".flow." in p.name)
MANIFESTS = sorted(FIXTURES.glob("*.action.yaml"))
KEYS = ["name", "on", "jobs", "steps", "needs", "action", "run", "inputs", "env", "if", "id", "cache", "outputs",
        "timeout", "resources", "image", "tag", "git", "file", "schedule", "webhook", "manual", "$schema", "author",
        "description", "type", "required", "default", "options", "multiline", "deprecationMessage", "runs", "using",
        "main", "script", "command", "args", "entrypoint", "dockerfile"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**12), st.floats(allow_nan=True),
    st.sampled_from(["python", "shell", "script", "cmd", "commandline", "docker", "node", "human", "list", "array",
                     "integer", "float", "boolean", "string", "datatorch/x@v1", "o/r@v1", "o/r", "./a", "docker://",
                     "${{ steps.a.outputs.b }}", "${{ event.x }}", "${{", "}}", "@", "", " ", "10m", "a@b@c"]),
    st.text(max_size=10))
TREES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=5)), max_leaves=20)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _mutate(data: Any, path: tuple[Any, ...], value: Any, drop: bool) -> Any:
    if not path:
        return value
    data = copy.deepcopy(data)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if drop:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


def _load_flow_text(text: str, suffix: str = ".yaml") -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"flow{suffix}"
        path.write_text(text)
        with contextlib.suppress(DtrunError):
            load_flow(path)


def _load_manifest_text(text: str) -> None:
    try:
        found = manifest_from_text(text, "action-datatorch.yaml")
    except DtrunError as exc:
        assert exc.message
        return
    with contextlib.suppress(DtrunError):
        check_inputs(found, {}, where="step")


@pytest.mark.parametrize("path", FLOWS + MANIFESTS, ids=lambda p: p.name)
def test_valid_fixtures_load(path: Path) -> None:
    if ".flow." in path.name:
        assert load_flow(path).flow.jobs
    else:
        assert isinstance(manifest_from_text(path.read_text(), path.name), ActionManifest)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_fixtures_never_crash(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(FLOWS + MANIFESTS))
    tree = yaml.safe_load(source.read_text())
    path = data.draw(st.sampled_from(_paths(tree)))
    mutated = _mutate(tree, path, data.draw(TREES), drop=bool(path) and data.draw(st.booleans()))
    text = yaml.safe_dump(mutated)
    if ".flow." in source.name:
        _load_flow_text(text)
    else:
        _load_manifest_text(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TREES, st.booleans())
def test_random_documents_never_crash(tree: Any, as_flow: bool) -> None:
    text = yaml.safe_dump(tree)
    if as_flow:
        _load_flow_text(text)
    else:
        _load_manifest_text(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60), st.sampled_from([".yaml", ".json"]))
def test_random_text_never_crashes(text: str, suffix: str) -> None:
    _load_flow_text(text, suffix)
    _load_manifest_text(text)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_inputs_are_checked_or_refused(data: st.DataObject) -> None:
    """Whatever a step gives an action (before or after its expressions are rendered): typed values or an
    `InputError`, never another exception."""
    found = manifest_from_text(data.draw(st.sampled_from(MANIFESTS)).read_text(), "action-datatorch.yaml")
    names = st.one_of(st.sampled_from(sorted(found.inputs) or ["x"]), st.text(max_size=5))
    given_inputs = data.draw(st.dictionaries(names, TREES, max_size=4))
    scope = Scope(context={"machine": {"name": "m"}, "directory": {"temp": "/tmp"}}, warn=lambda _: None)
    with contextlib.suppress(DtrunError):
        check_inputs(found, given_inputs, where="step", scope=scope, warn=lambda _: None)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=30), st.lists(st.sampled_from(
    ["${{", "}}", " ", "steps.a.outputs.b", "inputs.x", "input.y", "event.x", "machine.name", "'q'", "==", "!=",
     "&&", "||", "!", "(", ")", "success()", "nope()", "1.5", "-3", '"', "'"]), max_size=10).map("".join)))
def test_random_expressions_render_or_refuse(text: str) -> None:
    scope = Scope(inputs={"x": 1, "y": [1]}, steps={"a": {"b": 2.5}}, context={"machine": {"name": "m"}},
                  warn=lambda _: None)
    with contextlib.suppress(DtrunError):
        render(text, scope)
