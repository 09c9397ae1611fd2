"""`dtrun status` reads a local store without pydantic, docker-py, jinja2, yaml or fsspec (issue 19): the
command as a user runs it, in a repository whose store holds finished runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dtrun.engine.control import mark_active
from dtrun.snapshot import take_snapshot
from dtrun.store import JobRecord, RunRecord, State, Store

HEAVY = ("pydantic", "docker", "jinja2", "yaml", "fsspec")
#: Runs `dtrun status ARGS...` in this process and then prints which heavy packages it imported.
PROBE = ("import sys\nfrom dtrun.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
         f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}), file=sys.stderr)\n")


def project_with_runs(tmp_path: Path, count: int) -> tuple[Path, dict[str, str], Store]:
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    env = {**os.environ, "DTRUN_STORE": str(tmp_path / "store"), "DTRUN_DATA_DIR": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("DTRUN_CONFIG", None)
    env.pop("DTRUN_HOST", None)
    store = Store(env["DTRUN_STORE"], take_snapshot(root, root).repo_id)
    for i in range(count):
        run = RunRecord(name=f"run-{i}", repo=store.repo, workflow="train", submitted_at=1000.0 + i,
                        jobs=[f"job{i:04d}"], state=State.DONE, exit_code=0)
        job = JobRecord(id=f"job{i:04d}", run=run.name, workflow="train", provider="bash", state=State.DONE,
                        submitted_at=run.submitted_at)
        store.save_job(job)
        store.save_run(run)
        os.utime(store.run_path(run.name), (1000 + i, 1000 + i))
    return root, env, store


def status(root: Path, env: dict[str, str], *args: str) -> tuple[str, str]:
    done = subprocess.run([sys.executable, "-c", PROBE, "status", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout, done.stderr.strip().splitlines()[-1]


def test_status_shows_the_last_run_without_importing_heavy_packages(tmp_path: Path) -> None:
    root, env, _ = project_with_runs(tmp_path, 30)
    out, imported = status(root, env)
    assert imported == "[]"
    assert "run-29" in out and "job0029" in out and "run-28" not in out
    out, imported = status(root, env, "--last", "3")
    assert imported == "[]"
    assert [line.split()[0] for line in out.splitlines()[1:] if line.startswith("run-")] == ["run-29", "run-28",
                                                                                            "run-27"]


def test_status_json_and_an_unfinished_run_without_importing_heavy_packages(tmp_path: Path) -> None:
    root, env, store = project_with_runs(tmp_path, 2)
    run = RunRecord(name="busy-1", repo=store.repo, workflow="train", jobs=["jobbusy"], state=State.RUNNING)
    store.save_job(JobRecord(id="jobbusy", run=run.name, workflow="train", provider="bash", state=State.BUILDING))
    store.save_run(run)
    mark_active(store, run.name)
    store.write_json(store.repo_path("owners", f"{run.name}.json"),  # its engine is alive: this test process
                     {"pid": os.getpid(), "host": os.uname().nodename, "at": 1.0})
    out, imported = status(root, env, "--json")
    assert imported == "[]"
    data = json.loads(out)
    assert [r["name"] for r in data] == ["busy-1"]
    assert data[0]["jobs"][0]["state"] == "BUILDING" and data[0]["jobs"][0]["urls"] == {}
