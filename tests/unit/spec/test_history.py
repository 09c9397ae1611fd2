"""Workflow files of every dstack era (tests/unit/fixtures/dstack_history) load, with the meaning they had."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtrun.errors import SpecError
from dtrun.plan import build_plan
from dtrun.spec import Project, load_spec
from dtrun.spec.errors import SpecErrors
from dtrun.spec.models import Dep, Gpu
from tests.unit.spec.helpers import project

HISTORY = Path(__file__).resolve().parent.parent / "fixtures" / "dstack_history"
ERAS = sorted(p.name for p in HISTORY.iterdir() if p.is_dir())


def era(name: str) -> Project:
    return Project(git_root=HISTORY / name, root=HISTORY / name)


def test_there_is_one_folder_per_era() -> None:
    assert ERAS == ["hosted-2022-gpt2", "hosted-2022-template", "providers-2022", "v0.1-deps", "v0.2-bash",
                    "v0.7-dev-environments"]


@pytest.mark.parametrize("name", ERAS)
def test_every_era_validates_strictly(name: str) -> None:
    spec = load_spec(era(name))  # strict, as `dtrun validate`: raises on any error
    assert spec.workflows and not spec.errors and not spec.invalid
    for workflow in spec.workflows:
        build_plan(spec, workflow)  # and every workflow plans


def test_hosted_era_gpt2_tutorial() -> None:
    spec = load_spec(era("hosted-2022-gpt2"))
    download, encode, finetune = (spec.get(n) for n in ("download-model", "encode-dataset", "finetune-model"))
    assert (download.provider, download.image) == ("docker", "tensorflow/tensorflow:1.15.0-py3")
    # `$model` is the global variable, in commands and in artifact paths alike.
    assert download.commands[1] == "python3 download_model.py 124M"
    assert [a.path for a in download.artifacts] == ["models/124M"]
    assert download.repo_include == ["requirements.txt", "download_model.py"]
    assert encode.runtime_deps == ["download-model"] and encode.repo_include[-1] == "encode.py"
    assert finetune.runtime_deps == ["download-model", "encode-dataset"]
    # Own variables only in $variables_as_args; `run_name` is a declared variable here, so it wins over
    # the system one; `$job_id` becomes the job's id in the job; `$HOME` is the shell's.
    assert finetune.commands[1] == ("PYTHONPATH=src python3 train.py --run_name run1 --model_name 124M --dataset "
                                    "datasets/input.npz --batch_size 1 --learning_rate 0.00002 --run_name run1")
    assert finetune.commands[2] == 'echo "job ${DTRUN_JOB}, home $HOME"'
    # Global variables are every workflow's, overridable on the command line like its own.
    assert spec.variables["download-model"] == {"model": "124M", "models_dir": "model"}
    plan = build_plan(spec, "download-model", variables={"model": "117M"})
    assert plan.job("download-model").artifacts[0].path == "models/117M"
    assert plan.job("download-model").env["MODEL"] == "117M"


def test_hosted_era_repository_defined_provider_runs_as_its_container() -> None:
    spec = load_spec(era("hosted-2022-gpt2"))
    curl = spec.get("tinyshakespeare")
    assert (curl.provider, curl.image) == ("docker", "python:3.9")
    assert curl.commands[1] == "PYTHONPATH=providers python3 providers/curl/main.py"
    job = build_plan(spec, "tinyshakespeare").job("tinyshakespeare")
    assert json.loads(job.env["DSTACK_WORKFLOW_DATA"]) == {"output": "data/input.txt",
                                                           "url": "https://example.com/input.txt"}
    [warning] = [w for w in spec.warnings if w.workflow == "tinyshakespeare"]
    assert "provider 'curl'" in warning.message and "python:3.9" in warning.message
    assert warning.position is not None and warning.position.line == 47


def test_hosted_era_template_wrapper() -> None:
    spec = load_spec(era("hosted-2022-template"))
    prepare, train = spec.get("prepare"), spec.get("train")
    assert (prepare.provider, prepare.file, [a.path for a in prepare.artifacts]) == ("python", "prepare.py",
                                                                                     ["data"])
    assert (train.provider, train.runtime_deps) == ("bash", ["prepare"])


def test_providers_of_2022() -> None:
    spec = load_spec(era("providers-2022"))
    prepare, train, lab, ide, hello = (spec.get(n) for n in ("prepare", "train", "lab", "ide", "hello"))
    assert (prepare.file, prepare.args, prepare.python, prepare.env) == ("prepare.py", ["--size", "10"], "3.9",
                                                                         {"PYTHONPATH": "src"})
    assert prepare.resources.gpu == Gpu(count=1)  # top-level `gpu`
    assert (train.provider, train.file, train.resources.gpu) == ("python", "train.py", Gpu(count=1, name="V100"))
    # `version` of a dev environment is its tool's, not Python's.
    assert (lab.provider, lab.tool_version, lab.python) == ("lab", "3.4.3", None)
    assert (ide.provider, ide.tool_version, ide.python) == ("code", "1.67.2", "3.10")
    assert hello.ports == 1
    props = sorted(w.prop or "" for w in spec.warnings)
    assert props == ["ports", "provider", "provider.repo"]
    # The built-in curl provider of 2022: a download with the image's Python, then its artifacts.
    curl = spec.get("download-dataset")
    assert curl.provider == "bash" and [a.path for a in curl.artifacts] == ["raw_dataset"]
    assert curl.commands[0].startswith("python -c ") and curl.commands[0].endswith(
        " https://github.com/karpathy/char-rnn/blob/master/data/tinyshakespeare/input.txt raw_dataset/input.txt")


def test_v01_deps_and_v02_bash() -> None:
    train = load_spec(era("v0.1-deps")).get("train")
    assert train.deps[-1] == Dep(tag="mnist_data") and train.python == "3.10"
    spec = load_spec(era("v0.2-bash"))
    bash = spec.get("train")
    assert bash.before_run == ["pip install -r requirements.txt"] and bash.resources.local
    job = build_plan(spec, "train", run_args=["--epochs", "2"]).job("train")
    script = job.command[6] if job.command else ""
    # The artifact folder first, then before_run, then the commands, in one shell.
    assert script.index("mkdir -p") < script.index("pip install") < script.index("python train.py --epochs 2")
    assert job.working_dir == "/workspace/src"


def test_v07_dev_environments() -> None:
    spec = load_spec(era("v0.7-dev-environments"))
    code, lab = spec.get("ide-code"), spec.get("ide-lab")
    assert (code.setup, code.tool_version, code.ssh, code.cache) == (["pip install -r requirements.txt"],
                                                                     "4.11.0", True, ["~/.cache/pip"])
    assert lab.setup == ["conda install -y pandas"]
    [ssh] = [w for w in spec.warnings if w.prop == "ssh"]
    assert ssh.workflow == "ide-code" and ssh.position is not None and ssh.position.line == 7
    train = spec.get("train")
    assert [a.path for a in train.artifacts] == ["/opt/conda/envs/myenv"]


def test_an_invalid_workflow_does_not_block_the_others(tmp_path: Path) -> None:
    proj = project(tmp_path, {
        ".dstack/workflows/hello.yaml": """
            workflows:
              - name: hello
                provider: bash
                commands: [echo hi]
        """,
        ".dstack/workflows/broken.yaml": """
            workflows:
              - name: ide
                provider: code
                setp: [pip install x]
              - name: other
                provider: bash
                commands: [echo other]
        """,
    })
    with pytest.raises(SpecErrors):
        load_spec(proj)  # what `dtrun validate` does
    spec = load_spec(proj, strict=False)
    assert sorted(spec.workflows) == ["hello", "other"]
    [warning] = spec.warnings_for("hello")
    assert str(warning) == (f"{tmp_path}/.dstack/workflows/broken.yaml:4:5: skipped ide: unknown property 'setp'; "
                            "`dtrun validate` shows every error")
    with pytest.raises(SpecError) as info:
        spec.get("ide")
    assert "unknown property 'setp'" in str(info.value)
    with pytest.raises(SpecError) as missing:
        spec.get("nothing")
    assert "files with errors" in str(missing.value.hint)


def test_a_file_that_does_not_parse_is_skipped_too(tmp_path: Path) -> None:
    proj = project(tmp_path, {
        ".dstack/workflows/hello.yaml": "workflows:\n  - name: hello\n    provider: bash\n    commands: [echo]\n",
        ".dstack/workflows/bad.yaml": "workflows:\n  - name: [unclosed\n",
    })
    spec = load_spec(proj, strict=False)
    assert list(spec.workflows) == ["hello"]
    [warning] = spec.warnings_for("hello")
    assert warning.position is not None and warning.position.file.name == "bad.yaml"


def test_a_dependency_on_an_invalid_workflow_makes_the_dependent_invalid(tmp_path: Path) -> None:
    proj = project(tmp_path, {".dstack/workflows.yaml": """
        workflows:
          - name: a
            provider: bash
            commands: [x]
            bogus: 1
          - name: b
            provider: bash
            depends-on: [a]
            commands: [y]
          - name: c
            provider: bash
            commands: [z]
    """})
    spec = load_spec(proj, strict=False)
    assert list(spec.workflows) == ["c"]
    with pytest.raises(SpecError, match="depends on 'a', which is not defined"):
        spec.get("b")


def test_legacy_forms_that_conflict_are_errors(tmp_path: Path) -> None:
    proj = project(tmp_path, {".dstack/workflows.yaml": """
        workflows:
          - name: a
            provider: bash
            commands: [x]
            gpu: 1
            resources:
              gpu: 2
          - name: b
            template: bash
            provider: bash
            commands: [x]
          - name: c
            provider:
              repo: https://github.com/someone/providers
              name: fancy
          - name: d
            provider: bash
            commands: [x]
            depends-on:
              repo:
                exclude: [a]
          - name: e
            provider: bash
            commands: [x]
            repo_include: [a.py]
          - name: f
            provider: curl
            url: https://example.com/x
    """})
    with pytest.raises(SpecErrors) as info:
        load_spec(proj)
    errors = [str(e).replace(f"{tmp_path}/", "").split("\n")[0] for e in info.value.errors]
    assert errors == [
        ".dstack/workflows.yaml:5:5: 'gpu' is given twice (also under 'resources')",
        ".dstack/workflows.yaml:9:5: 'template' and 'provider' both name the provider",
        ".dstack/workflows.yaml:14:7: provider 'fancy' of https://github.com/someone/providers cannot be fetched: "
        "dtrun runs providers of this repository only",
        ".dstack/workflows.yaml:21:9: 'depends-on.repo' lists the files the workflow depends on",
        ".dstack/workflows.yaml:25:5: unknown property 'repo_include'",
        ".dstack/workflows.yaml:26:5: provider 'curl' needs `url` and `output`",
    ]


def test_depends_on_variables_is_recorded_with_a_warning(tmp_path: Path) -> None:
    proj = project(tmp_path, {
        ".dstack/workflows.yaml": """
            workflows:
              - name: t
                provider: bash
                commands: [echo $lr]
                depends-on:
                  variables: [lr]
        """,
        ".dstack/variables.yaml": "variables:\n  t:\n    lr: 0.1\n    seed: 1\n",
    })
    spec = load_spec(proj)
    assert spec.get("t").depends_variables == ["lr"] and spec.get("t").commands == ["echo 0.1"]
    [warning] = spec.warnings
    assert (warning.prop, warning.workflow, str(warning.position).endswith(":6:7")) == \
        ("depends-on.variables", "t", True)


def test_dollar_names_are_only_substituted_for_declared_variables(tmp_path: Path) -> None:
    proj = project(tmp_path, {
        ".dstack/workflows.yaml": """
            workflows:
              - name: t
                provider: bash
                commands:
                  - for lr in 1 2; do echo $lr $HOME ${PATH} $epochs ${epochs}x; done
                  - echo $variables_as_args
        """,
        ".dstack/variables.yaml": "variables:\n  t:\n    epochs: 3\n    note: a b\n",
    })
    t = load_spec(proj).get("t")
    assert t.commands == ["for lr in 1 2; do echo $lr $HOME ${PATH} 3 3x; done",
                          "echo --epochs 3 --note 'a b'"]


@pytest.mark.parametrize("name", ERAS)
def test_the_schema_accepts_every_era_but_repository_defined_providers(name: str) -> None:
    """Editors checking with `dtrun schema` accept the historical forms too (a workflow of a provider from
    .dstack/providers.yaml has that provider's own properties, which no static schema knows)."""
    import yaml

    from dtrun.spec.schema import workflows_schema

    jsonschema = pytest.importorskip("jsonschema")
    schema = workflows_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    for file in sorted((HISTORY / name / ".dstack").rglob("workflows*.yaml")) + \
            sorted((HISTORY / name / ".dstack").glob("workflows/*.yaml")):
        data = yaml.safe_load(file.read_text())
        data["workflows"] = [w for w in data["workflows"] if w.get("provider") != "curl"]
        assert [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(data)] == [], file


def test_a_registry_password_written_out_is_said_once(tmp_path: Path) -> None:
    spec = load_spec(project(tmp_path, {".dstack/workflows.yaml": """
        workflows:
          - name: plain
            image: registry.example.com/me/app:1
            registry_auth:
              username: me
              password: hunter2
          - name: secret
            image: registry.example.com/me/app:1
            registry_auth:
              username: me
              password: ${{ secrets.REGISTRY_PASSWORD }}
        """}))
    [warning] = [w for w in spec.warnings if w.prop == "registry_auth"]
    assert warning.workflow == "plain" and warning.position is not None and warning.position.line == 6
    assert "hunter2" not in warning.message and "${{ secrets.NAME }}" in warning.message
