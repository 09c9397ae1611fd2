"""Random and mutated input through the real loaders: a model or a `DtrunError`, never a traceback.

Workflow files and variables files (`load_spec` on a project folder, then `build_plan` for every
workflow it gives), flows (`load_flow` on a file) and action manifests (`load_manifest` on an action's
folder) are fed random text, random YAML structures, well-shaped documents with random values, and the
valid fixtures mutated (characters deleted and inserted, lines swapped and doubled, subtrees replaced or
dropped). The strategies are the unit property tests' (tests/unit/spec/test_property.py,
tests/unit/flows/test_property.py). A loader that refused everything would pass that, so the valid
fixtures (every dstack era of tests/unit/fixtures/dstack_history/, the flow and action fixtures) must
still load, and the campaign must have loaded some mutated documents as well as refused some.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dtrun.errors import DtrunError
from dtrun.flows.loader import MANIFEST, load_flow, load_manifest
from dtrun.plan import build_plan
from dtrun.spec import Project, load_spec
from tests.faults.reliability import Row
from tests.unit.flows.test_property import FLOWS, MANIFESTS, _mutate, _paths
from tests.unit.flows.test_property import TREES as FLOW_TREES
from tests.unit.spec.test_property import TREES, WORKFLOWS

HISTORY = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "dstack_history"
ERAS = sorted(p for p in HISTORY.iterdir() if p.is_dir())
#: Every YAML file of every era: (era folder, file inside it).
ERA_FILES = [(era, p.relative_to(era)) for era in ERAS for p in sorted(era.rglob("*.yaml"))]
#: More examples for a longer hunt (`DTRUN_FUZZ_SCALE=20 pytest tests/faults/test_fuzz_loaders.py`).
SCALE = max(1, int(os.environ.get("DTRUN_FUZZ_SCALE", "1")))
#: Derandomized: the same documents every run, so CI never flakes on a lucky draw; DTRUN_FUZZ_SCALE (and
#: DTRUN_FUZZ_RANDOM=1 for fresh draws) explores further by hand.
FAST = settings(max_examples=80 * SCALE, deadline=None, database=None,
                derandomize=os.environ.get("DTRUN_FUZZ_RANDOM") != "1",
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
MUTATIONS = st.lists(st.tuples(st.sampled_from(["delete", "insert", "swap", "dup"]), st.integers(0, 10**6),
                               st.text(max_size=4)), min_size=1, max_size=5)


def mutate_text(text: str, mutations: list[tuple[str, int, str]]) -> str:
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
    return text


@contextlib.contextmanager
def folder(files: dict[str, str], copy_of: Path | None = None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        root = Path(name) / "p"
        if copy_of is not None:
            shutil.copytree(copy_of, root)
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
        root.mkdir(exist_ok=True)
        yield root


class Outcomes:
    """What the loaders made of what they were fed: loaded or refused (a `DtrunError`); anything else
    propagates, so hypothesis shrinks it and the test fails with the smallest input that crashed."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def feed(self, kind: str, load: Callable[[], Any]) -> None:
        try:
            load()
        except DtrunError as exc:
            assert exc.message, "a DtrunError that says nothing"
            str(exc)  # and it can be shown
            self.counts[f"{kind} refused"] += 1
            return
        self.counts[f"{kind} loaded"] += 1

    def total(self, outcome: str) -> int:
        return sum(n for k, n in self.counts.items() if k.endswith(outcome))


def load_project(root: Path) -> None:
    spec = load_spec(Project(git_root=root, root=root))
    for name in spec.workflows:
        with contextlib.suppress(DtrunError):
            build_plan(spec, name, run_args=["-x", "a b"], run_name="r-1")


def load_flow_text(text: str, suffix: str = ".yaml") -> None:
    with folder({f"flow{suffix}": text}) as root:
        load_flow(root / f"flow{suffix}")


def load_manifest_text(text: str) -> None:
    with folder({MANIFEST: text}) as root:
        load_manifest(root, "action ./a")


@pytest.mark.fault("random and mutated workflow files, variables files, flows and action manifests (hypothesis)",
                   "0 tracebacks through load_spec (+ build_plan), load_flow and load_manifest: each document "
                   "gives a model or a DtrunError; every valid fixture (6 dstack eras, flows, actions) still loads")
def test_loaders_give_models_or_dtrun_errors_never_tracebacks(fault_row: Row) -> None:
    started = time.monotonic()
    seen = Outcomes()

    @FAST
    @given(st.text(max_size=300))
    def workflow_text(text: str) -> None:
        with folder({".dtrun/workflows.yaml": text, ".dtrun/variables.yaml": text[::-1]}) as root:
            seen.feed("workflows", lambda: load_project(root))

    @FAST
    @given(st.lists(TREES, max_size=4), TREES)
    def workflow_structures(workflows: list[Any], variables: Any) -> None:
        with folder({".dtrun/workflows.yaml": yaml.safe_dump({"workflows": workflows}),
                     ".dtrun/variables.yaml": yaml.safe_dump({"variables": variables})}) as root:
            seen.feed("workflows", lambda: load_project(root))

    @FAST
    @given(st.lists(WORKFLOWS, max_size=3), st.dictionaries(
        st.sampled_from(["a", "b", "global"]), st.dictionaries(st.text(max_size=5), TREES, max_size=3), max_size=2))
    def well_shaped(workflows: list[Any], variables: Any) -> None:
        with folder({".dtrun/workflows.yaml": yaml.safe_dump({"workflows": workflows}),
                     ".dtrun/variables.yaml": yaml.safe_dump({"variables": variables})}) as root:
            seen.feed("workflows", lambda: load_project(root))

    @settings(FAST, max_examples=200 * SCALE)
    @given(st.sampled_from(ERA_FILES), st.one_of(st.just([]), MUTATIONS))  # [] : the era's file as it is
    def mutated_eras(picked: tuple[Path, Path], mutations: list[tuple[str, int, str]]) -> None:
        """A dstack project of one era with one of its files (workflows, variables, providers) mutated."""
        era, rel = picked
        kind = "variables" if rel.name == "variables.yaml" else "workflows"
        with folder({str(rel): mutate_text((era / rel).read_text(), mutations)}, copy_of=era) as root:
            seen.feed(kind, lambda: load_project(root))

    @settings(FAST, max_examples=150 * SCALE)
    @given(st.data())
    def mutated_flows_and_manifests(data: st.DataObject) -> None:
        source = data.draw(st.sampled_from(FLOWS + MANIFESTS))
        tree = yaml.safe_load(source.read_text())
        path = data.draw(st.sampled_from(_paths(tree)))
        text = yaml.safe_dump(_mutate(tree, path, data.draw(FLOW_TREES), drop=bool(path) and data.draw(st.booleans())))
        if ".flow." in source.name:
            seen.feed("flows", lambda: load_flow_text(text))
        else:
            seen.feed("manifests", lambda: load_manifest_text(text))

    @FAST
    @given(st.sampled_from(FLOWS + MANIFESTS), MUTATIONS)
    def mutated_flow_text(source: Path, mutations: list[tuple[str, int, str]]) -> None:
        text = mutate_text(source.read_text(), mutations)
        if ".flow." in source.name:
            seen.feed("flows", lambda: load_flow_text(text, source.suffix))
        else:
            seen.feed("manifests", lambda: load_manifest_text(text))

    @FAST
    @given(st.one_of(st.text(max_size=80), FLOW_TREES.map(yaml.safe_dump)), st.sampled_from([".yaml", ".json"]))
    def random_flows_and_manifests(text: str, suffix: str) -> None:
        seen.feed("flows", lambda: load_flow_text(text, suffix))
        seen.feed("manifests", lambda: load_manifest_text(text))

    for campaign in (workflow_text, workflow_structures, well_shaped, mutated_eras, mutated_flows_and_manifests,
                     mutated_flow_text, random_flows_and_manifests):
        campaign()

    # A loader that refused everything would have passed the above: the valid fixtures must load.
    for era in ERAS:
        spec = load_spec(Project(git_root=era, root=era))
        assert spec.workflows and not spec.errors, era.name
        for name in spec.workflows:
            build_plan(spec, name)
    for flow in FLOWS:
        assert load_flow(flow).flow.jobs, flow.name
    for manifest in MANIFESTS:
        with folder({MANIFEST: manifest.read_text()}) as root:
            assert load_manifest(root, manifest.name)[0].name, manifest.name
    # ... and the mutated ones were not all refused (nor all accepted)
    for kind in ("workflows", "variables", "flows", "manifests"):
        assert seen.counts[f"{kind} loaded"] > 0 and seen.counts[f"{kind} refused"] > 0, dict(seen.counts)

    fed = seen.total("loaded") + seen.total("refused")
    fault_row.checked += (f" ({fed} documents in {time.monotonic() - started:.0f} s: {seen.total('loaded')} loaded, "
                          f"{seen.total('refused')} refused with a DtrunError, 0 tracebacks)")
