"""Variables and run arguments reach the container: `dtrun run X --var V ARGS...` against the real daemon."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from tests.conftest import BUSYBOX_IMAGE, DtrunRunner

WORKFLOWS = f"""
workflows:
  - name: show
    help: Prints its variables and arguments
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands:
      - echo "BATCH_SIZE=$BATCH_SIZE LR=$LR"
      - echo "size=${{{{ batch-size }}}}"
      - printf '<%s>\\n' ${{{{ run.args }}}}
      - echo "name=${{{{ run.name }}}}"
"""
VARIABLES = """
variables:
  show:
    batch-size: 64
    lr: 0.10
"""


def test_variables_and_run_args_reach_the_container(make_project: Callable[..., Path], dtrun: DtrunRunner) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS, ".dtrun/variables.yaml": VARIABLES})

    shown = dtrun("run", "show", "--help", cwd=root)
    assert shown.code == 0, shown.output
    assert "  --batch-size   [BATCH_SIZE]   default is 64" in shown.stdout.splitlines()
    assert "  --lr           [LR]           default is 0.10" in shown.stdout.splitlines()

    default = dtrun("run", "show", cwd=root)
    assert default.code == 0, default.output
    assert default.stdout.splitlines()[:2] == ["BATCH_SIZE=64 LR=0.10", "size=64"]

    result = dtrun("run", "show", "--batch-size", "32", "-l", "Hello, world!", "it's $HOME", "--lr=0.5", cwd=root)
    assert result.code == 0, result.output
    name = re.search(r"run (\S+): DONE", result.stderr)
    assert name, result.stderr
    assert result.stdout.splitlines() == [
        "BATCH_SIZE=32 LR=0.5", "size=32", "<-l>", "<Hello, world!>", "<it's $HOME>", f"name={name.group(1)}"]


SECRET_WORKFLOWS = f"""
workflows:
  - name: login
    provider: docker
    image: {BUSYBOX_IMAGE}
    secrets: []
    env:
      AUTH: "Bearer ${{{{ secrets.API_TOKEN }}}}"
    commands:
      - printf '%s' "${{{{ secrets.API_TOKEN }}}}" | fold -w 4; echo
      - echo "$AUTH" | fold -w 4
"""


def test_secret_templates_are_resolved_when_the_job_starts_and_never_recorded(
        make_project: Callable[..., Path], dtrun: DtrunRunner) -> None:
    root = make_project({".dtrun/workflows.yaml": SECRET_WORKFLOWS})
    missing = dtrun("run", "login", cwd=root)
    assert missing.code != 0 and "secret 'API_TOKEN' is not set" in missing.stderr
    assert dtrun("secrets", "add", "API_TOKEN", cwd=root, input="tok-1234abcd\n").code == 0
    result = dtrun("run", "login", cwd=root)
    assert result.code == 0, result.output
    # Folded into pieces the value is not masked: it reached the container resolved.
    assert "tok-1234abcd" not in result.stdout  # whole, it would have been masked
    assert result.stdout.replace("\n", "") == "tok-1234abcd" + "Bearer tok-1234abcd"
    assert "secrets.API_TOKEN" not in result.stdout
    records = [p for p in dtrun.store.rglob("*") if p.is_file() and p.suffix == ".json"]
    assert records and not any("tok-1234abcd" in p.read_text() for p in records)


def test_a_detached_run_keeps_its_variables_and_arguments(make_project: Callable[..., Path],
                                                          dtrun: DtrunRunner) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS, ".dtrun/variables.yaml": VARIABLES})
    started = dtrun("run", "-d", "show", "--batch-size", "7", "--", "--help", "a b", cwd=root)
    assert started.code == 0, started.output
    name = started.stdout.strip()
    logs = dtrun("logs", name, "-f", cwd=root)
    assert logs.code == 0, logs.output
    assert [line for line in logs.stdout.splitlines() if line and not line.startswith("run ")][:5] == [
        "BATCH_SIZE=7 LR=0.10", "size=7", "<--help>", "<a b>", f"name={name}"]
