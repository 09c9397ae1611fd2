"""The plan: runtime dependencies in order, variables as environment, overrides, and plan-time errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtrun.errors import DtrunError
from dtrun.plan import build_plan
from dtrun.spec import load_spec
from dtrun.spec.models import Dep
from tests.unit.spec.helpers import load_fixture, project

PIPELINE = {
    ".dstack/workflows.yaml": """
        workflows:
          - name: download
            provider: bash
            commands: [echo $MODEL]
          - name: train
            provider: bash
            commands: [echo]
            depends-on: [download, download:latest]
            deps: [":data", owner/repo/other]
          - name: evaluate
            provider: bash
            commands: [echo]
            depends-on: [download, train]
            env: [FROM_HOST, FIXED=1]
        """,
    ".dstack/variables.yaml": """
        variables:
          download:
            model: 124M
          evaluate:
            model: 124M
            batch-size: 64
        """,
}


def test_runtime_dependencies_run_first_and_once(tmp_path: Path) -> None:
    plan = build_plan(load_spec(project(tmp_path, PIPELINE)), "evaluate")
    assert [j.workflow for j in plan.jobs] == ["download", "train", "evaluate"]
    train = plan.job("train")
    assert train.needs == ["download"]
    assert train.inputs == [Dep(tag="data"), Dep(workflow="other", repo="owner/repo"),
                            Dep(workflow="download", tag="latest")]


def test_variables_become_environment_and_overrides_reach_every_workflow_declaring_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HOST", "host value")
    plan = build_plan(load_spec(project(tmp_path, PIPELINE)), "evaluate", variables={"model": "117M"})
    assert plan.job("download").env == {"MODEL": "117M"}
    assert plan.job("train").env == {}
    assert plan.job("evaluate").env == {"MODEL": "117M", "BATCH_SIZE": "64", "FROM_HOST": "host value", "FIXED": "1"}


def test_an_override_no_workflow_of_the_run_declares_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DtrunError) as info:
        build_plan(load_spec(project(tmp_path, PIPELINE)), "train", variables={"modle": "x"})
    assert str(info.value) == ("unknown variable 'modle' for workflow 'train'\n"
                               "  hint: did you mean 'model'? variables: model")


def test_an_unknown_workflow_has_suggestions(tmp_path: Path) -> None:
    with pytest.raises(DtrunError) as info:
        build_plan(load_spec(project(tmp_path, PIPELINE)), "evaluat")
    assert str(info.value) == ("no workflow named 'evaluat'\n"
                               "  hint: did you mean 'evaluate'? workflows: download, evaluate, train")


def test_seed002_plan_uses_variables_in_args() -> None:
    plan = build_plan(load_fixture("seed002"), "train", variables={"batch-size": "32"})
    job = plan.job("train")
    # The script runs after a shell that creates its artifact folder (`model`), then execs it.
    assert job.command is not None
    assert job.command[:6] == ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]
    assert "mkdir -p" in job.command[6] and "model" in job.command[6] and job.command[6].endswith('exec "$@"')
    assert job.command[7:] == ["python", "python", "train.py", "--batch-size", "32", "--lr=1.0"]
    assert job.env["BATCH_SIZE"] == "32" and job.env["GAMMA"] == "0.70" and job.env["LOG_INTERVAL"] == "10"
    assert job.needs == [] and job.inputs == [Dep(workflow="download", tag="latest")]


def test_the_variables_change_the_fingerprint() -> None:
    spec = load_fixture("seed002")
    assert build_plan(spec, "train").job("train").fingerprint() != \
        build_plan(spec, "train", variables={"lr": "0.5"}).job("train").fingerprint()
    assert build_plan(spec, "train").job("train").fingerprint() == build_plan(spec, "train").job("train").fingerprint()


def test_the_image_origin_is_not_in_the_fingerprint(tmp_path: Path) -> None:
    """`origin` only words error messages: a job whose image came from another workflow's words is the same job."""
    from dataclasses import replace

    from dtrun.images.spec import Origin

    job = build_plan(load_spec(project(tmp_path, PIPELINE)), "train").job("train")
    told = replace(job, image=replace(job.image, origin=Origin("elsewhere", python="`python: 3.7`")))
    assert told.fingerprint() == job.fingerprint()
