"""Artifacts from a node other than 0 (`artifacts: [{path, node}]`): declared, labelled, checked."""

from __future__ import annotations

import pytest

from dtrun.engine.collect import ARTIFACTS_LABEL, Declared, declared_from_labels, declared_label
from dtrun.spec.models import Workflow
from dtrun.spec.typed import ValidationError


def test_the_label_carries_a_node_only_when_one_is_set() -> None:
    declared = [Declared("out", "/workspace/out"), Declared("from1", "/workspace/from1", 1)]
    label = declared_label(declared)
    assert label == '[["out", "/workspace/out"], ["from1", "/workspace/from1", 1]]'
    assert declared_from_labels({ARTIFACTS_LABEL: label}) == declared


def test_an_artifact_names_a_node_the_workflow_has() -> None:
    base = {"name": "ddp", "provider": "torchrun", "file": "train.py"}
    workflow = Workflow.validate({**base, "nodes": 2, "artifacts": ["out", {"path": "from1", "node": 1}]})
    assert [(a.path, a.node) for a in workflow.artifacts] == [("out", 0), ("from1", 1)]
    with pytest.raises(ValidationError, match=r"artifact 'from1' is to be saved from node 2, but the workflow runs "
                                              r"on 2 nodes \(0..1\)"):
        Workflow.validate({**base, "nodes": 2, "artifacts": [{"path": "from1", "node": 2}]})
    with pytest.raises(ValidationError, match=r"'artifacts\[0\].node': must be 0 or more, got -1"):
        Workflow.validate({**base, "artifacts": [{"path": "out", "node": -1}]})


def test_a_default_node_keeps_the_jobs_cache_key() -> None:
    """`node` enters a job's fingerprint only when set: jobs run before it existed stay cached."""
    from dataclasses import replace
    from unittest import mock

    from dtrun.spec.models import Artifact
    from tests.unit.engine.test_engine import job

    plain = replace(job("a"), artifacts=[Artifact(path="out")])
    from dtrun import plan
    from dtrun.spec.typed import dump

    def dump_before_node(value: object, **kw: object) -> object:  # an artifact's dump before `node` existed
        return {"path": value.path, "mount": value.mount} if isinstance(value, Artifact) else dump(value)

    with mock.patch.object(plan, "dump", dump_before_node):
        before = plain.fingerprint()
    assert plain.fingerprint() == before
    assert replace(plain, artifacts=[Artifact(path="out", node=1)]).fingerprint() != before


def test_node_all_is_one_artifact_per_node_saved_under_its_path() -> None:
    from dataclasses import replace

    from dtrun.engine.collect import declare
    from dtrun.providers.torchrun_launch import Torchrun
    from dtrun.spec.models import Artifact
    from tests.unit.engine.test_engine import job

    ddp = replace(job("ddp"), torchrun=Torchrun(nodes=2, nproc_per_node=1),
                  artifacts=[Artifact(path="out"), Artifact(path="logs/", node="all", mount=True)])
    declared = declare(ddp)
    assert declared == [Declared("out", "/workspace/out"),
                        Declared("logs/node0", "/workspace/logs/node0", 0, "/workspace/logs", True),
                        Declared("logs/node1", "/workspace/logs/node1", 1, "/workspace/logs", True)]
    # the label keeps what a later process needs to save them (not `mount`: only the running engine saves those)
    again = declared_from_labels({ARTIFACTS_LABEL: declared_label(declared)})
    assert again == [replace(d, mount=False) for d in declared]
    assert [d.copy_from for d in again] == ["/workspace/out", "/workspace/logs", "/workspace/logs"]


def test_node_all_is_accepted_and_other_words_are_not() -> None:
    base = {"name": "ddp", "provider": "torchrun", "file": "train.py", "nodes": 3}
    workflow = Workflow.validate({**base, "artifacts": [{"path": "out", "node": "all"}]})
    assert workflow.artifacts[0].node == "all"
    with pytest.raises(ValidationError, match="node"):
        Workflow.validate({**base, "artifacts": [{"path": "out", "node": "every"}]})
