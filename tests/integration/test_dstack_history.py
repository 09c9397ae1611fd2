"""dstack workflows as dstack's users wrote them, run for real (issue 12).

The hello-txt workflow of dstack's docs, an absolute artifact path, a repository with one broken file,
and the messages of builds that need what an offline machine cannot download.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASE_IMAGE, DtrunRunner

HELLO = """
workflows:
  - name: hello-txt
    provider: bash
    commands:
      - echo "Hello world" > output/hello.txt
    artifacts:
      - path: ./output

  - name: read-by-workflow
    provider: bash
    depends-on:
      - hello-txt
    commands:
      - cat output/hello.txt

  - name: read-by-tag
    provider: bash
    deps:
      - :greeting
    commands:
      - cat output/hello.txt

  - name: conda-env
    provider: bash
    commands:
      - test -d /opt/conda/envs/myenv && test -z "$(ls -A /opt/conda/envs/myenv)" && test -w /opt/conda/envs/myenv
      - echo '{"name":"myenv"}' > /opt/conda/envs/myenv/env.json
      - mkdir -p deep && test -d relative/nested
    artifacts:
      - path: /opt/conda/envs/myenv
      - relative/nested
"""

BROKEN = """
workflows:
  - name: ide
    provider: code
    setp:
      - pip install -r requirements.txt
"""


def artifact_tars(store: Path) -> dict[str, Path]:
    """The saved artifacts of every job in the store: declared path -> its tar."""
    out: dict[str, Path] = {}
    for manifest in store.glob("repos/**/jobs/*/artifacts/*.json"):
        record = json.loads(manifest.read_text())["artifact"]
        [tar] = manifest.parent.glob(f"{record['key']}-*.tar")
        out[record["path"]] = tar
    return out


def test_hello_txt_from_dstacks_docs_then_by_workflow_and_by_tag(dtrun: DtrunRunner,
                                                                 make_project: Callable[..., Path]) -> None:
    project = make_project({".dstack/workflows.yaml": HELLO})
    first = dtrun("run", "hello-txt", "--tag", "greeting", cwd=project)
    assert first.code == 0, first.output
    with tarfile.open(artifact_tars(dtrun.store)["./output"]) as tar:
        assert tar.extractfile("hello.txt").read() == b"Hello world\n"  # type: ignore[union-attr]
    by_workflow = dtrun("run", "read-by-workflow", "--no-cache", cwd=project)
    assert (by_workflow.code, by_workflow.stdout) == (0, "Hello world\n"), by_workflow.output
    by_tag = dtrun("run", "read-by-tag", cwd=project)
    assert (by_tag.code, by_tag.stdout) == (0, "Hello world\n"), by_tag.output


def test_artifact_folders_exist_empty_and_writable_before_the_job(dtrun: DtrunRunner,
                                                                  make_project: Callable[..., Path]) -> None:
    project = make_project({".dstack/workflows.yaml": HELLO})
    result = dtrun("run", "conda-env", cwd=project)
    assert result.code == 0, result.output
    tars = artifact_tars(dtrun.store)
    with tarfile.open(tars["/opt/conda/envs/myenv"]) as tar:
        assert tar.getnames() == ["env.json"]
    with tarfile.open(tars["relative/nested"]) as tar:
        assert tar.getnames() == []  # created before the job, left empty by it, saved empty


def test_one_broken_file_does_not_block_another_workflow(dtrun: DtrunRunner,
                                                          make_project: Callable[..., Path]) -> None:
    project = make_project({".dstack/workflows.yaml": HELLO, ".dstack/workflows/ide.yaml": BROKEN})
    result = dtrun("run", "hello-txt", cwd=project)
    assert result.code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {project}/.dstack/workflows/ide.yaml:4:5: skipped ide: unknown property 'setp'; "
                        "`dtrun validate` shows every error"]
    validate = dtrun("validate", cwd=project)
    assert validate.code == 1 and "ide.yaml:4:5: error: unknown property 'setp'" in validate.stderr
    broken = dtrun("run", "ide", cwd=project)
    assert broken.code != 0 and "unknown property 'setp'" in broken.stderr and "Traceback" not in broken.output


@pytest.mark.parametrize(("workflow", "expected"), [
    ({"name": "old", "provider": "bash", "python": "3.7", "commands": ["python --version"]},
     f"workflow 'old': `python: 3.7` is not in the base image {BASE_IMAGE} (it has 3.11), so it is installed with "
     "conda, and installing Miniforge needs github.com (https://github.com/conda-forge/miniforge/releases/download/"),
    ({"name": "condaer", "provider": "bash", "commands": ["conda install -y numpy"]},
     "workflow 'condaer': its commands call `conda` (`conda install -y numpy`), so its image gets conda (Miniforge), "
     "and installing Miniforge needs github.com (https://github.com/conda-forge/miniforge/releases/download/"),
])
def test_offline_builds_say_which_property_needs_which_download(
        workflow: dict[str, Any], expected: str, dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    """A real `dtrun run`: the build runs against the daemon and its download of Miniforge is refused (no
    github.com here); the user reads which workflow and property needed it, and how to bring it instead."""
    import yaml

    project = make_project({".dstack/workflows.yaml": yaml.safe_dump({"workflows": [workflow]})})
    result = dtrun("run", workflow["name"], cwd=project)
    assert result.code != 0 and "Traceback" not in result.output, result.output
    [error] = [line for line in result.stderr.splitlines() if "error:" in line]
    message = error.split("error: ", 1)[1]
    assert message.startswith(expected), result.stderr
    assert message.endswith(".sh), which this build cannot reach"), result.stderr
    [hint] = [line for line in result.stderr.splitlines() if line.strip().startswith("hint:")]
    assert "docker load" in hint and "base_image" in hint, result.stderr


GPT2 = """
workflows:
  - name: download-model
    image: dtrun-local/busybox:latest
    commands:
      - mkdir -p models/$model && echo "weights of $model" > models/$model/model.ckpt
    depends-on:
      repo:
        include:
          - download_model.py
    artifacts:
      - models/$model

  - name: finetune-model
    image: dtrun-local/busybox:latest
    depends-on:
      workflows:
        - download-model
    commands:
      - cat models/${model}/model.ckpt
      - echo train.py --model_name $model $variables_as_args
      - test -n "$job_id" && test "$LEARNING_RATE" = 0.00002 && echo "MODEL=$MODEL"

  - name: tinyshakespeare
    provider: curl
    url: https://example.com/input.txt
    output: data/input.txt
    artifacts:
      - data
"""
GPT2_VARIABLES = """
variables:
  global:
    model: 124M
  finetune-model:
    batch_size: 1
    learning_rate: 0.00002
"""
PROVIDERS = """
providers:
  - name: curl
    image: dtrun-local/busybox:latest
    commands:
      - echo "$DSTACK_WORKFLOW_DATA" > data/request.json
      - cat data/request.json
"""


def test_hosted_era_gpt2_layout_runs_with_global_variables_and_variables_as_args(
        dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    project = make_project({".dstack/workflows.yaml": GPT2, ".dstack/variables.yaml": GPT2_VARIABLES,
                            ".dstack/providers.yaml": PROVIDERS, "download_model.py": "print('x')\n"})
    result = dtrun("run", "finetune-model", "--model", "117M", cwd=project)
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == ["weights of 117M", "train.py --model_name 117M --batch_size 1 "
                                          "--learning_rate 0.00002", "MODEL=117M"]
    assert "`depends-on.repo.include` is recorded" in result.stderr  # a one-line warning, not an error
    assert "models/117M" in artifact_tars(dtrun.store)


def test_a_repository_defined_provider_runs_as_its_container(dtrun: DtrunRunner,
                                                              make_project: Callable[..., Path]) -> None:
    project = make_project({".dstack/workflows.yaml": GPT2, ".dstack/variables.yaml": GPT2_VARIABLES,
                            ".dstack/providers.yaml": PROVIDERS})
    result = dtrun("run", "tinyshakespeare", cwd=project)
    assert result.code == 0, result.output
    assert json.loads(result.stdout) == {"output": "data/input.txt", "url": "https://example.com/input.txt"}
    assert "provider 'curl'" in result.stderr and "dstack's provider Python API" in result.stderr
    with tarfile.open(artifact_tars(dtrun.store)["data"]) as tar:
        assert tar.getnames() == ["request.json"]


def test_the_curl_provider_of_2022_downloads_into_its_artifact(dtrun: DtrunRunner,
                                                               make_project: Callable[..., Path]) -> None:
    """PyPI is the one HTTPS site these machines reach (through a proxy whose CA the job trusts)."""
    project = make_project({".dstack/workflows.yaml": """
workflows:
  - name: download-index
    provider: curl
    url: https://pypi.org/simple/six/
    output: raw/six.html
    artifacts:
      - raw
"""})
    result = dtrun("run", "download-index", cwd=project)
    assert result.code == 0, result.output
    assert result.stdout == "downloaded https://pypi.org/simple/six/ -> raw/six.html\n"
    with tarfile.open(artifact_tars(dtrun.store)["raw"]) as tar:
        page = tar.extractfile("six.html").read()  # type: ignore[union-attr]
    assert b"six-1.16.0" in page
