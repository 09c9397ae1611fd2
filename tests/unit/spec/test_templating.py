"""`${{ ... }}`: variables, run.args (quoting intact), run.name, and secrets left for the engine."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from dtrun.errors import DtrunError
from dtrun.plan import build_plan
from dtrun.spec import Spec, load_spec
from dtrun.spec.templating import references, resolve_secrets, secret_marker
from tests.unit.spec.helpers import project

WORKFLOWS = """
workflows:
  - name: print-args
    provider: bash
    commands:
      - printf '%s\\n' ${{ run.args }}
      - echo "run ${{ run.name }} size ${{ batch-size }} key ${{secrets.API_KEY}}"
    env:
      SIZE: ${{ batch-size }}
      TOKEN: ${{ secrets.TOKEN }}
  - name: script
    provider: python
    file: main.py
    args: [--size, "${{ batch-size }}", "${{ run.args }}", --last]
"""
VARIABLES = """
variables:
  print-args:
    batch-size: 64
  script:
    batch-size: 8
"""


@pytest.fixture
def spec(tmp_path: Path) -> Spec:
    return load_spec(project(tmp_path, {".dtrun/workflows.yaml": WORKFLOWS, ".dtrun/variables.yaml": VARIABLES}))


def test_run_args_keep_their_quoting_in_a_shell_command(spec: Spec) -> None:
    args = ["-l", "Hello, world!", "it's", "$HOME", ""]
    job = build_plan(spec, "print-args", run_args=args, run_name="fast-rabbit-1").job("print-args")
    assert job.command is not None
    script = job.command[-1]
    assert script.splitlines()[0] == "printf '%s\\n' " + shlex.join(args)
    # The shell sees exactly the arguments that were given.
    out = subprocess.run(["sh", "-c", script.splitlines()[0]], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:-1] == args


def test_variables_run_name_and_secret_markers(spec: Spec) -> None:
    job = build_plan(spec, "print-args", variables={"batch-size": "32"}, run_name="fast-rabbit-1").job("print-args")
    assert job.command is not None
    assert job.command[-1].splitlines()[1] == 'echo "run fast-rabbit-1 size 32 key ${{ secrets.API_KEY }}"'
    assert job.env["SIZE"] == "32"
    assert job.env["BATCH_SIZE"] == "32"
    assert job.env["TOKEN"] == "${{ secrets.TOKEN }}"
    assert job.secret_references() == ["API_KEY", "TOKEN"]


def test_run_name_stays_a_marker_without_a_run(spec: Spec) -> None:
    job = build_plan(spec, "print-args").job("print-args")
    assert job.command is not None and "run ${{ run.name }} size 64" in job.command[-1]


def test_run_args_as_a_list_item_become_separate_arguments(spec: Spec) -> None:
    job = build_plan(spec, "script", run_args=["-l", "Hello, world!"]).job("script")
    assert job.command == ["python", "main.py", "--size", "8", "-l", "Hello, world!", "--last"]


def test_secrets_are_not_in_the_fingerprint_values(spec: Spec) -> None:
    plan = build_plan(spec, "print-args")
    job = plan.job("print-args")
    resolved = {k: resolve_secrets(v, {"TOKEN": "s3cr3t"}) for k, v in job.env.items() if k == "TOKEN"}
    assert resolved == {"TOKEN": "s3cr3t"}
    assert "s3cr3t" not in job.fingerprint()
    started = job.with_secrets({"TOKEN": "s3cr3t", "API_KEY": "k"})
    assert started.env["TOKEN"] == "s3cr3t" and started.command is not None and job.command is not None
    # the secret is a reference to the variable that holds it, never text of the command (issue 15)
    assert started.command[-1].splitlines()[1] == 'echo "run ${{ run.name }} size 64 key ${DTRUN_SECRET_API_KEY}"'
    assert started.env["DTRUN_SECRET_API_KEY"] == "k" and "k" not in started.command[-1].split("key ")[1]
    assert job.env["TOKEN"] == "${{ secrets.TOKEN }}"  # the planned job keeps the marker


def test_resolve_secrets() -> None:
    text = f"a {secret_marker('A')} b ${{{{secrets.B}}}} c ${{{{ other }}}}"
    assert resolve_secrets(text, {"A": "1", "B": "two words"}) == "a 1 b two words c ${{ other }}"
    assert references([text, secret_marker("A"), secret_marker("C")]) == ["A", "B", "C"]
    with pytest.raises(DtrunError, match="secret 'A' is not set"):
        resolve_secrets(text, {"B": "x"})


def test_a_value_containing_template_text_is_not_substituted_again(tmp_path: Path) -> None:
    spec = load_spec(project(tmp_path, {".dtrun/workflows.yaml": WORKFLOWS, ".dtrun/variables.yaml": VARIABLES}))
    job = build_plan(spec, "print-args", variables={"batch-size": "${{ nope }}"}).job("print-args")
    assert job.env["SIZE"] == "${{ nope }}"


def test_templates_work_in_non_string_properties(tmp_path: Path) -> None:
    spec = load_spec(project(tmp_path, {
        ".dtrun/workflows.yaml": """
            workflows:
              - name: w
                provider: bash
                commands: [echo]
                ports: ${{ ports }}
                resources:
                  gpu: ${{ gpus }}
                  memory: ${{ memory }}
            """,
        ".dtrun/variables.yaml": "variables:\n  w:\n    ports: 1\n    gpus: 0\n    memory: 1GB\n"}))
    job = build_plan(spec, "w", variables={"gpus": "2", "memory": "2GB"}).job("w")
    assert (job.resources.gpu_count, job.resources.memory, job.ports) == (2, 2 * 10**9, 1)


def test_an_override_of_the_wrong_type_is_reported_at_the_template(tmp_path: Path) -> None:
    proj = project(tmp_path, {
        ".dtrun/workflows.yaml": "workflows:\n  - name: w\n    provider: bash\n    commands: [echo]\n"
                                 "    ports: ${{ ports }}\n",
        ".dtrun/variables.yaml": "variables:\n  w:\n    ports: 1\n"})
    with pytest.raises(DtrunError) as info:
        build_plan(load_spec(proj), "w", variables={"ports": "many"})
    assert str(info.value).startswith(f"{tmp_path}/.dtrun/workflows.yaml:5:12: 'ports': expected a whole number, "
                                      "got 'many'")


def test_run_args_in_an_args_string_are_split_back_into_the_same_arguments(tmp_path: Path) -> None:
    spec = load_spec(project(tmp_path, {".dtrun/workflows.yaml": """
        workflows:
          - name: s
            provider: python
            file: main.py
            args: --first ${{ run.args }}
        """}))
    job = build_plan(spec, "s", run_args=["-l", "Hello, world!", "it's"]).job("s")
    assert job.command == ["python", "main.py", "--first", "-l", "Hello, world!", "it's"]
