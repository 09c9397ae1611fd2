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
