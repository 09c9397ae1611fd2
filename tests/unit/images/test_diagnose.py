"""Failed builds explained in the words of the workflow that caused them (dtrun.images.diagnose).

The failure texts are what `BuildLog.failure()` made of real offline builds on this project's machines.
"""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from dtrun.errors import BuildError
from dtrun.images.diagnose import Step, explain_build_failure
from dtrun.images.probe import BaseInfo
from dtrun.images.spec import ImageSpec, Origin
from dtrun.providers.base import ProviderContext, python_image
from dtrun.spec.models import Workflow

BASE = "dtrun-local/base:bookworm"
INFO = BaseInfo(image_id="sha256:1", python="3.11", venv=True, apt=True)
MINIFORGE = (
    "building dtrun/bash:17396de1f101c909696e failed (exit 1)\n"
    "failing step: [stage-0 3/4] RUN set -eu;     curl -fsSL -o /tmp/miniforge.sh "
    "\"https://github.com/conda-forge/miniforge/releases/download/24.9.2-0/Miniforge3-24.9.2-0-Linux-$(uname -m).sh\";"
    "     bash /tmp/miniforge.sh -b -p /opt/conda;     rm -f /tmp/miniforge.sh;     /opt/conda/bin/conda clean -afy\n"
    "  0.920 curl: (6) Could not resolve host: github.com\n"
    "  ERROR: executor failed running [/bin/sh -c set -eu; curl ...]: exit code: 6")
URL = ("https://github.com/conda-forge/miniforge/releases/download/24.9.2-0/"
       f"Miniforge3-24.9.2-0-Linux-{platform.machine()}.sh")


def spec(python: str | None = None, conda: str | None = None) -> ImageSpec:
    return ImageSpec(provider="bash", python=python.split()[-1].strip("`") if python else None,
                     origin=Origin("train", python, conda))


def test_python_missing_from_the_base_and_miniforge_unreachable() -> None:
    error = explain_build_failure(BuildError(MINIFORGE), spec("`python: 3.7`"), BASE, INFO)
    assert error.message == (
        f"workflow 'train': `python: 3.7` is not in the base image {BASE} (it has 3.11), so it is installed with "
        f"conda, and installing Miniforge needs github.com ({URL}), which this build cannot reach")
    assert error.hint is not None
    assert error.hint.startswith("drop `python: 3.7` to use the base image's Python 3.11, or bring a base image with "
                                 "conda (and that Python)")
    assert "docker load" in error.hint and "base_image" in error.hint


def test_conda_in_the_commands_and_miniforge_unreachable() -> None:
    error = explain_build_failure(BuildError(MINIFORGE),
                                  spec(conda="its commands call `conda` (`conda install -y numpy`)"), BASE, INFO)
    assert error.message == (
        "workflow 'train': its commands call `conda` (`conda install -y numpy`), so its image gets conda (Miniforge), "
        f"and installing Miniforge needs github.com ({URL}), which this build cannot reach")
    assert error.hint is not None and error.hint.startswith("bring a base image with conda")


def test_conda_channel_unreachable() -> None:
    failure = ("failing step: [stage-0 4/5] RUN set -eu; export CONDA_PKGS_DIRS=/var/cache/dtrun-conda; "
               "\"$(command -v mamba || command -v conda)\" create -y -q -p /opt/dtrun/env python=3.7 pip\n"
               "  CondaHTTPError: HTTP 000 CONNECTION FAILED for url <https://conda.anaconda.org/conda-forge/"
               "linux-64/repodata.json>")
    error = explain_build_failure(BuildError(failure), spec("`python: 3.7`"), BASE, INFO)
    assert error.message == ("workflow 'train': `python: 3.7` is installed with conda, and conda needs "
                             "conda.anaconda.org (the conda-forge channel), which this build cannot reach")


def test_uv_python_unreachable() -> None:
    failure = ("failing step: [stage-0 4/5] RUN set -eu; uv python install 3.7; uv venv --seed\n"
               "  error: Failed to download https://github.com/astral-sh/python-build-standalone/...\n"
               "  Caused by: dns error: failed to lookup address information")
    error = explain_build_failure(BuildError(failure), spec("`python: 3.7`"), BASE, INFO)
    assert error.message == ("workflow 'train': `python: 3.7` is not in the base image dtrun-local/base:bookworm "
                             "(it has 3.11), and installing it with uv needs github.com (python-build-standalone), "
                             "which this build cannot reach")


def test_requirements_failure_quotes_pip() -> None:
    failure = ("failing step: [stage-0 5/5] RUN pip install -r /tmp/requirements.txt\n"
               "  ERROR: No matching distribution found for nosuchpackage==1.0")
    error = explain_build_failure(BuildError(failure), spec(), BASE, INFO)
    explanation, *log = error.message.splitlines()
    assert explanation == ("workflow 'train': installing its requirements.txt failed: "
                           "ERROR: No matching distribution found for nosuchpackage==1.0")
    assert "\n".join(log) == failure  # the failing step's own log follows the explanation


def test_an_unknown_failure_keeps_the_builders_message() -> None:
    original = BuildError("failing step: RUN false\n  exit 1", hint="fix the failing step, then run again")
    assert explain_build_failure(original, spec(), BASE, INFO) is original
    # A Miniforge step that failed for another reason than the network is not blamed on the network.
    other = BuildError(MINIFORGE.replace("curl: (6) Could not resolve host: github.com", "bash: out of disk"))
    assert explain_build_failure(other, spec("`python: 3.7`"), BASE, INFO) is other


def test_step_parsing() -> None:
    step = Step.parse(MINIFORGE)
    assert step.title.startswith("[stage-0 3/4] RUN set -eu;") and step.offline and step.host("x") == "github.com"


@pytest.mark.parametrize(("commands", "install", "why"), [
    (["conda install -y numpy"], "conda", "its commands call `conda` (`conda install -y numpy`)"),
    (["echo hi && mamba install x"], "conda", "its commands call `conda` (`echo hi && mamba install x`)"),
    (["python -m anaconda_thing", "echo conda-forge"], "auto", None),
])
def test_commands_calling_conda_get_conda(commands: list[str], install: str, why: str | None, tmp_path: Path) -> None:
    workflow = Workflow(name="train", provider="bash", commands=commands, python="3.10")
    image = python_image("bash", workflow, ProviderContext(project_root=tmp_path))
    assert image.python_install == install
    assert image.origin == Origin("train", "`python: 3.10`", why)
    # Who asked is not part of what the image is.
    assert image.key() == ImageSpec(provider="bash", python="3.10", python_install=install).key()


def test_python_install_conda_is_named_as_the_reason(tmp_path: Path) -> None:
    workflow = Workflow(name="t", provider="bash", commands=["conda list"], python_install="conda")
    image = python_image("bash", workflow, ProviderContext(project_root=tmp_path))
    assert image.origin is not None and image.origin.conda == "`python_install: conda`"
