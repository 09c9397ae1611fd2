"""The fault suite's report, loaded as a plugin (`-p tests.faults.reliability` in pyproject's addopts, so
the xdist controller runs it too). Each fault test records what it caused and what it saw;
`docs/reliability.md` is written from those rows at the end of a session that ran every fault test
(a partial run, `-k`, leaves the committed table alone), so the table is the suite's own word, never
typed by hand.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
REPORT = REPO_ROOT / "docs" / "reliability.md"


@dataclass
class Row:
    fault: str
    checked: str
    result: str = "not reached"
    runs: int = 0
    artifacts_saved: int = 0
    records_lost: int = 0
    test: str = ""


_ROWS: dict[str, Row] = {}
_COLLECTED: set[str] = set()
_RAN: set[str] = set()


def _row_of(item: pytest.Item) -> Row | None:
    """The row a fault test declares with `@pytest.mark.fault("what was caused", "what was checked")`."""
    marker = item.get_closest_marker("fault")
    if marker is None:
        return None
    if item.nodeid not in _ROWS:
        _ROWS[item.nodeid] = Row(fault=str(marker.args[0]), checked=str(marker.args[1]), test=item.name)
    return _ROWS[item.nodeid]


@pytest.fixture
def fault_row(request: pytest.FixtureRequest) -> Row:
    """This test's row, to fill in its counts (runs, artifacts saved, records lost)."""
    row = _row_of(request.node)
    assert row is not None, "mark the test with @pytest.mark.fault(fault, checked)"
    return row


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault(fault, checked): a fault-suite case and its row in "
                                       "docs/reliability.md")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    outcome: Any = yield
    report = outcome.get_result()
    row = _row_of(item)
    if row is None:
        return
    if report.when == "call" or report.skipped:
        _RAN.add(item.nodeid)
    if report.skipped:
        row.result = "skipped: " + str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else "")
    elif report.when == "call":
        row.result = "ok" if report.passed else "FAILED"
    elif report.failed:
        row.result = "FAILED"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _COLLECTED.update(i.nodeid for i in items if i.get_closest_marker("fault"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Each process leaves its part; the last process to finish (the xdist controller, or the only
    one) merges the parts and writes the table when every collected fault test ran."""
    part: dict[str, Any] = {"collected": sorted(_COLLECTED), "ran": sorted(_RAN),
                            "rows": [asdict(r) for r in _ROWS.values()]}
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        if part["collected"]:
            (REPORT.parent / f".reliability-{worker}.json").write_text(json.dumps(part))
        return
    collected, ran, rows = set(_COLLECTED), set(_RAN), [Row(**r) for r in part["rows"]]
    for path in REPORT.parent.glob(".reliability-*.json"):
        other = json.loads(path.read_text())
        collected.update(other["collected"])
        ran.update(other["ran"])
        rows += [Row(**r) for r in other["rows"]]
        path.unlink()
    if rows and collected and collected <= ran and _whole_suite(session.config):
        write_report(rows)


def _whole_suite(config: pytest.Config) -> bool:
    """Whether this session selected every fault test: its paths hold all of tests/faults (no file or
    node id of it alone) and no -k or -m narrowed it. A partial run leaves the committed table alone."""
    if config.option.keyword or config.option.markexpr:
        return False
    faults = Path(__file__).resolve().parent
    paths = [Path(a.split("::")[0]).resolve() for a in config.args] or [faults.parent]
    return any(p == faults or p in faults.parents for p in paths if "::" not in str(p))


def write_report(rows: list[Row]) -> None:
    lines = [
        "# Reliability: faults caused for real",
        "",
        "Written by the fault suite (`tests/faults/`, part of `make test`) at the end of its last full run;",
        "do not edit by hand. Each row is a fault the suite caused on real parts (a SIGKILLed client, a",
        "restarted docker-in-docker daemon, a full tmpfs, a killed S3 server, damaged records, random input)",
        "and what it then checked.",
        "",
        f"Last run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs.",
        "",
        "| fault | what was checked | result | runs | artifacts saved | records lost |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r.test, r.fault)):
        lines.append(f"| {r.fault} | {r.checked} | {r.result} | {r.runs} | {r.artifacts_saved} | "
                     f"{r.records_lost} |")
    total = (sum(r.runs for r in rows), sum(r.artifacts_saved for r in rows), sum(r.records_lost for r in rows))
    lines += ["", f"Totals: {total[0]} runs, {total[1]} artifacts saved, {total[2]} records lost.", ""]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines))
