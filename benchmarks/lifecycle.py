"""Lifecycle speed: a fully cached re-run of a two-job chain, and `dtrun status` over 1,000 stored runs.

Targets (issue 6): the cached re-run under 1 s with no container started; `dtrun status` under 0.5 s
with 1,000 runs in the store. Both are timed as a user sees them (the `dtrun` command in a subprocess,
interpreter start included) and set against `docker run --rm IMAGE true` on the same daemon.

    python benchmarks/lifecycle.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

IMAGE = os.environ.get("DTRUN_TEST_BUSYBOX", "dtrun-local/busybox:latest")
WORKFLOWS = f"""
workflows:
  - name: prep
    provider: docker
    image: {IMAGE}
    commands: ["mkdir -p out", "echo data > out/d.txt"]
    artifacts: [{{path: out}}]
  - name: train
    provider: docker
    image: {IMAGE}
    depends-on: [prep]
    commands: ["mkdir -p model", "cat out/d.txt > model/m.txt"]
    artifacts: [{{path: model}}]
"""


CPU: dict[str, list[float]] = {}


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall time of one command; its CPU time (user + system) is kept in CPU, by command."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(" ".join(command[3:] if command[1:2] == ["-m"] else command), []).append(
        after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stdout}{proc.stderr}")
    return elapsed


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=b", "-c", "user.email=b@b", *args], check=True,
                   capture_output=True)


def make_project(base: Path) -> Path:
    root = base / "project"
    (root / ".dtrun").mkdir(parents=True)
    (root / ".dtrun" / "workflows.yaml").write_text(WORKFLOWS)
    (root / "train.py").write_text("print('hello')\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "bench")
    return root


def containers_created(label: str, since: float) -> int:
    import docker

    events = docker.from_env().events(since=int(since), until=int(time.time()) + 1, decode=True,
                                      filters={"type": "container", "event": "create",
                                               "label": f"dev.dtrun.store={label}"})
    return sum(1 for _ in events)


def remove_labelled(label: str) -> None:
    """What this benchmark's store made on the shared daemon (artifact volumes), and only that."""
    import docker

    client = docker.from_env()
    for container in client.containers.list(all=True, filters={"label": f"dev.dtrun.store={label}"}):
        container.remove(force=True)
    for volume in client.volumes.list(filters={"label": f"dev.dtrun.store={label}"}):
        volume.remove(force=True)


def fill_store(store_url: str, repo: str, count: int) -> None:
    """`count` finished runs of two jobs each, written as the engine writes them."""
    from dtrun.engine.control import mark_finished
    from dtrun.store import JobRecord, RunRecord, State, Store

    store = Store(store_url, repo)
    now = time.time()
    for i in range(count):
        run = RunRecord(name=f"bench-run-{i}", repo=repo, workflow="train", submitted_at=now - 3600 + i,
                        host="unix:///var/run/docker.sock", variables={"epochs": str(i % 7)})
        for workflow in ("prep", "train"):
            job = JobRecord(id=uuid.uuid4().hex[:12], run=run.name, workflow=workflow, provider="docker",
                            host=run.host, submitted_at=run.submitted_at)
            for state in (State.SUBMITTED, State.BUILDING, State.RUNNING, State.UPLOADING, State.DONE):
                job.move(state)
            store.save_job(job)
            run.jobs.append(job.id)
        run.state, run.finished_at, run.exit_code = State.DONE, run.submitted_at + 5, 0
        store.save_run(run)
        mark_finished(store, run.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dtrun-bench-") as tmp:
        base = Path(tmp)
        store = base / "store"
        env = {**os.environ, "DTRUN_STORE": str(store), "DTRUN_DATA_DIR": str(base / "data"),
               "XDG_CONFIG_HOME": str(base / "config"), "NO_COLOR": "1"}
        env.pop("DTRUN_HOST", None)
        label = hashlib.sha256(str(store).encode()).hexdigest()[:12]
        root = make_project(base)
        dtrun = [sys.executable, "-m", "dtrun"]

        raw = [timed(["docker", "run", "--rm", IMAGE, "true"], root, env) for _ in range(args.repeat)]
        first = timed([*dtrun, "run", "train"], root, env)
        time.sleep(1.02 - time.time() % 1)
        since = time.time()
        cached = [timed([*dtrun, "run", "train"], root, env) for _ in range(args.repeat)]
        started = containers_created(label, since)

        from dtrun.snapshot import take_snapshot

        repo = take_snapshot(root, root).repo_id
        fill_store(str(store), repo, args.runs)
        status = [timed([*dtrun, "status"], root, env) for _ in range(args.repeat)]
        last = [timed([*dtrun, "status", "--last", "20"], root, env) for _ in range(args.repeat)]
        help_ = [timed([*dtrun, "--help"], root, env) for _ in range(args.repeat)]
        remove_labelled(label)

    def row(name: str, values: list[float], target: str = "", key: str = "") -> str:
        median = statistics.median(values)
        cpu = f"cpu {statistics.median(CPU[key]):5.3f} s  " if key in CPU else ""
        return (f"{name:44} median {median:6.3f} s  min {min(values):6.3f} s  {cpu}"
                f"x{median / statistics.median(raw):5.2f} raw docker run  {target}")

    print(f"docker run --rm {IMAGE} true".ljust(44), f"median {statistics.median(raw):6.3f} s")
    print(f"{'first run of the two-job chain':44} {first:6.3f} s")
    print(row("cached re-run of the two-job chain", cached, "(target < 1 s)", "run train"))
    print(f"{'  containers started by the cached re-runs':44} {started} (target 0)")
    print(row(f"dtrun status, {args.runs} runs in the store", status, "(target < 0.5 s)", "status"))
    print(row(f"dtrun status --last 20, {args.runs} runs", last, "", "status --last 20"))
    print(row("dtrun --help (interpreter + CLI import)", help_, "", "--help"))
    print("(wall times include waiting for a CPU: compare with the raw docker run of the same session)")


if __name__ == "__main__":
    main()
