"""`dtrun flow serve` survives a bug in a triggered run: it says where it happened, logs the traceback,
counts it, and serves the next trigger.

A bug cannot be caused on purpose in working code, so the first run's `Session.flow_run` is replaced by
one that raises a `KeyError` (in a small launcher; the server, its webhook, its thread pool and the
second, real run on Docker are the real ones).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtrun.errors import DtrunError
from dtrun.flows.serving import TriggeredRuns
from tests.conftest import BUSYBOX_IMAGE, DtrunRunner, write_files
from tests.faults.reliability import Row
from tests.integration.test_flows_triggers import _free_port, _post

LAUNCHER = """
import sys
from dtrun.api import Session

real = Session.flow_run
calls = []

def flaky(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 1:
        return {}["no-such-key"]  # a bug: an unexpected KeyError deep in a run
    return real(self, *args, **kwargs)

Session.flow_run = flaky
from dtrun.cli import main
sys.argv = ["dtrun", *sys.argv[1:]]
main()
"""


def test_counts_and_messages_of_triggered_runs(tmp_path: Path) -> None:
    said: list[str] = []
    outcomes: Iterator[Exception | tuple[str, bool]] = iter(
        [KeyError("k"), DtrunError("the store is gone"), ("calm-otter-3", True), ("calm-otter-4", False)])

    def start(path: Path, why: str) -> tuple[str, bool]:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    log = tmp_path / "logs" / "errors.log"
    runs = TriggeredRuns(start, said.append, log)
    assert [runs.execute("f", tmp_path / "f.yaml", "schedule") for _ in range(4)] == [False, False, True, False]
    assert runs.counts.line() == "served 4 runs: 1 succeeded, 3 failed, 1 internal error"
    internal = next(s for s in said if "internal error" in s and s.startswith("failed"))
    assert "KeyError: 'k'" in internal and f"test_serve_errors.py:{start.__code__.co_firstlineno + 3}" in internal
    assert f"traceback in {log}" in internal and "Traceback (most recent call last)" in log.read_text()
    assert "failed: flow f (schedule): the store is gone" in said
    assert said[-1] == runs.counts.line() and "served 1 run: 0 succeeded, 1 failed, 1 internal error" in said


@pytest.mark.fault("an unexpected error (a KeyError) inside a run triggered by `dtrun flow serve`",
                   "the server says it with file:line, logs its traceback, counts it (`1 internal error`) and "
                   "runs the next trigger; exit code 1 at the end")
def test_flow_serve_keeps_serving_after_an_internal_error(tmp_path: Path, dtrun: DtrunRunner,
                                                          fault_row: Row) -> None:
    write_files(tmp_path, {".dtrun/flows/hook.yaml": f"""
        name: hook
        on:
          webhook:
            secret: ${{{{ secrets.HOOK }}}}
        jobs:
          j:
            image: {BUSYBOX_IMAGE}
            steps:
              - run: echo second-run-ran
        """, "launch.py": LAUNCHER})
    port = _free_port()
    secret = "a-long-shared-secret"
    proc = subprocess.Popen([sys.executable, "launch.py", "flow", "serve", "--port", str(port), "--max-runs", "2"],
                            cwd=tmp_path, env={**dtrun.env, "DTRUN_SECRET_HOOK": secret}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/hooks/hook"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert _post(url, b"{}", {"X-Dtrun-Token": secret}) == 202
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "flow serve did not start listening"
                time.sleep(0.1)
        assert _post(url, b"{}", {"X-Dtrun-Token": secret}) == 202  # the server still takes triggers
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "Traceback" not in out
    assert "internal error KeyError: 'no-such-key' (at " in err and "launch.py:" in err, err
    assert "served 1 run: 0 succeeded, 1 failed, 1 internal error" in err
    assert "[j/1] second-run-ran" in out
    assert "served 2 runs: 1 succeeded, 1 failed, 1 internal error" in err
    log = Path(dtrun.env["DTRUN_DATA_DIR"]) / "flow-serve-errors.log"
    assert f"traceback in {log}" in err and "KeyError: 'no-such-key'" in log.read_text()
    fault_row.runs = 2
