"""Every byte a job writes reaches the terminal and the stored log, newline or not, however short the job.

A job's last output is the usual victim of a log stream that is closed too early (a progress bar, a
last `print(..., end='')`): fifty one-line jobs that end without a newline run in one run, in parallel,
and each one's text must be on the terminal and in `dtrun logs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BUSYBOX_IMAGE, DtrunRunner
from tests.faults.reliability import Row
from tests.integration.test_artifacts import run_name

JOBS = 50


def fifty_short_jobs() -> str:
    lines = ["workflows:"]
    for i in range(JOBS):
        lines += [f"  - name: j{i}", "    provider: docker", f"    image: {BUSYBOX_IMAGE}",
                  f"    commands: [\"printf 'final-no-newline-{i}'\"]"]
    lines += ["  - name: all", "    provider: docker", f"    image: {BUSYBOX_IMAGE}",
              f"    depends-on: [{', '.join(f'j{i}' for i in range(JOBS))}]", "    commands: [\"printf done\"]"]
    return "\n".join(lines) + "\n"


@pytest.mark.fault("50 short jobs whose only output has no newline",
                   "each job's text on the terminal and in `dtrun logs` of the run")
def test_fifty_short_jobs_lose_no_output(make_project: Any, dtrun: DtrunRunner, fault_row: Row) -> None:
    project: Path = make_project({".dtrun/workflows.yaml": fifty_short_jobs()})
    result = dtrun("run", "all", "--no-cache", cwd=project, timeout=900)
    fault_row.runs = 1
    assert result.code == 0, result.output[-3000:]
    missing_terminal = [i for i in range(JOBS) if f"final-no-newline-{i}" not in result.stdout]
    logs = dtrun("logs", run_name(result), cwd=project)
    assert logs.code == 0, logs.output
    missing_stored = [i for i in range(JOBS) if f"final-no-newline-{i}" not in logs.stdout]
    fault_row.records_lost = len(missing_terminal) + len(missing_stored)
    assert missing_terminal == [], f"not on the terminal: {missing_terminal}"
    assert missing_stored == [], f"not in the stored log: {missing_stored}"
