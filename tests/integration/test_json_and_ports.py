"""Where is my app, and what did my run do, for scripts: `dtrun status` shows a running job's addresses
(with a scheme, reachable), and `--json` on run, status, artifacts and tags writes one documented schema
(docs/json.md) to stdout alone."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.conftest import BUSYBOX_IMAGE, DtrunRunner

WORKFLOWS = f"""
workflows:
  - name: web
    provider: docker
    image: {BUSYBOX_IMAGE}
    ports: 1
    commands:
      - mkdir -p /tmp/www && echo "hello from the job" > /tmp/www/index.html
      - httpd -f -p "$PORT_0" -h /tmp/www
  - name: saves
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands:
      - echo "said by the job"
      - mkdir -p out && echo data > out/a.txt && echo more > out/b.txt
    artifacts: [out]
  - name: fails
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands: ["echo going down", "exit 3"]
"""


def _project(make_project: Callable[..., Path]) -> Path:
    return make_project({".dtrun/workflows.yaml": WORKFLOWS})


def test_status_shows_where_a_running_jobs_ports_are(make_project: Callable[..., Path], dtrun: DtrunRunner) -> None:
    project = _project(make_project)
    started = dtrun("run", "web", "-d", cwd=project)
    assert started.code == 0, started.output
    run = started.stdout.strip()
    try:
        deadline, table = time.time() + 90, ""
        while time.time() < deadline:
            table = dtrun("status", cwd=project).stdout
            if "PORT_0: " in table:
                break
            time.sleep(1)
        # under the running job's row: `    PORT_0: http://127.0.0.1:N` (engine/addresses.py)
        address = re.search(r"^    PORT_0: (http://127\.0\.0\.1:\d+)$", table, re.MULTILINE)
        assert address, table
        data = json.loads(dtrun("status", "--json", cwd=project).stdout)
        [job] = [j for r in data if r["name"] == run for j in r["jobs"]]
        assert job["ports"] == {"PORT_0": address.group(1)}
        body = b""
        for _ in range(30):  # httpd may still be starting
            try:
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with opener.open(address.group(1) + "/", timeout=5) as answer:
                    body = answer.read()
                break
            except OSError:
                time.sleep(0.5)
        assert body == b"hello from the job\n"
    finally:
        dtrun("stop", run, cwd=project)
    finished = dtrun("status", cwd=project).stdout
    assert "PORT_0" not in finished  # stale addresses are not shown


def test_run_json_is_the_summary_alone_on_stdout(make_project: Callable[..., Path], dtrun: DtrunRunner) -> None:
    project = _project(make_project)
    result = dtrun("run", "saves", "--json", cwd=project)
    assert result.code == 0, result.output
    summary = json.loads(result.stdout)  # nothing else on stdout
    assert "said by the job" in result.stderr
    assert summary["workflow"] == "saves" and summary["state"] == "DONE" and summary["exit_code"] == 0
    [job] = summary["jobs"]
    assert (job["workflow"], job["state"], job["exit_code"]) == ("saves", "DONE", 0)
    assert [(a["path"], a["files"]) for a in job["artifacts"]] == [("out", 2)]

    listed = dtrun("artifacts", summary["run"], "--json", cwd=project)
    assert listed.code == 0, listed.output
    [artifact] = json.loads(listed.stdout)
    assert (artifact["job"], artifact["workflow"], artifact["path"], artifact["files"]) == \
        (job["id"], "saves", "out", 2)
    assert sorted((e["path"], e["size"]) for e in artifact["entries"]) == [("a.txt", 5), ("b.txt", 5)]

    assert dtrun("tags", "add", "first", summary["run"], cwd=project).code == 0
    tags = json.loads(dtrun("tags", "--json", cwd=project).stdout)
    assert [(t["tag"], t["run"], t["workflow"], t["artifacts"]) for t in tags] == [
        ("first", summary["run"], "saves", ["out"])]


def test_run_json_of_a_failed_run(make_project: Callable[..., Path], dtrun: DtrunRunner) -> None:
    result = dtrun("run", "fails", "--json", cwd=_project(make_project))
    assert result.code == 3, result.output
    summary = json.loads(result.stdout)
    assert summary["state"] == "FAILED" and summary["exit_code"] == 3
    assert [(j["state"], j["exit_code"]) for j in summary["jobs"]] == [("FAILED", 3)]
    assert "going down" in result.stderr


def test_json_does_not_go_with_detach(make_project: Callable[..., Path], dtrun: DtrunRunner) -> None:
    result = dtrun("run", "saves", "--json", "-d", cwd=_project(make_project))
    assert result.code != 0
    assert "does not go with --detach" in result.stderr and "Traceback" not in result.output
