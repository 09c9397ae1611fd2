"""The public Python API: `dtrun.run(...)` as the issue's one-liner, and `import dtrun` staying cheap."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import DtrunRunner

HELLO = """
workflows:
  - name: hello
    provider: bash
    commands:
      - echo "Hello from the API"
"""


def test_dtrun_run_one_liner_prints_the_exit_code(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    root = make_project({".dstack/workflows.yaml": HELLO})
    code = f"import dtrun; print(dtrun.run('hello', project={str(root)!r}).exit_code)"
    proc = subprocess.run([sys.executable, "-c", code], env=dtrun.env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "0\n"  # events go to the session's listener: nothing else is printed
    status = dtrun("status", "--json", cwd=root)
    assert '"state": "DONE"' in status.stdout


def test_import_dtrun_loads_neither_the_api_nor_docker() -> None:
    code = ("import sys, dtrun; print(sorted(m for m in sys.modules if m.startswith(('docker', 'dtrun.api', "
            "'dtrun.engine', 'rich'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[]\n"
    import dtrun

    assert dtrun.__all__ == ["Session", "run"] and dtrun.Session.__module__ == "dtrun.api"
