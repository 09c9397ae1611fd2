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


def fill_in(pythonpath: str | None, store: Path, repo: str, count: int) -> None:
    """`fill_store` run by the measured version's own code (its record format)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (pythonpath, str(Path(__file__).parent)) if p)}
    subprocess.run([sys.executable, "-c", f"import lifecycle; lifecycle.fill_store({str(store)!r}, {repo!r}, {count})"],
                   env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--before", metavar="REV", help="also measure this git revision's dtrun (interleaved)")
    args = parser.parse_args()
    from _common import remove_store_objects
    from repo_scale import export_revision

    with tempfile.TemporaryDirectory(prefix="dtrun-bench-") as tmp:
        base = Path(tmp)
        root = make_project(base)
        versions: dict[str, dict[str, str]] = {}
        for name, path in ([(f"before ({args.before})", export_revision(args.before, base / "before"))]
                           if args.before else []) + [("after", "")]:
            key = name.split()[0]
            env = {**os.environ, "DTRUN_STORE": str(base / f"store-{key}"), "DTRUN_DATA_DIR": str(base / f"data-{key}"),
                   "XDG_CONFIG_HOME": str(base / "config"), "NO_COLOR": "1"}
            env.pop("DTRUN_HOST", None)
            if path:
                env["PYTHONPATH"] = path
            versions[name] = env
        dtrun = [sys.executable, "-m", "dtrun"]
        raw = [timed(["docker", "run", "--rm", IMAGE, "true"], root, env) for _ in range(args.repeat)]
        figures: dict[str, dict[str, list[float]]] = {name: {} for name in versions}
        started: dict[str, int] = {}
        for env in versions.values():
            timed([*dtrun, "run", "train"], root, env)
        time.sleep(1.02 - time.time() % 1)
        for name, env in versions.items():
            since = time.time()
            for _ in range(args.repeat):
                figures[name].setdefault("cached re-run of the two-job chain (no container)", []).append(
                    timed([*dtrun, "run", "train"], root, env))
            label = hashlib.sha256(env["DTRUN_STORE"].encode()).hexdigest()[:12]
            started[name] = containers_created(label, since)

        from dtrun.snapshot import take_snapshot

        repo = take_snapshot(root, root).repo_id
        for env in versions.values():
            fill_in(env.get("PYTHONPATH"), Path(env["DTRUN_STORE"]), repo, args.runs)
        for _ in range(args.repeat):  # interleaved, so the machine's load drift falls on both alike
            for name, env in versions.items():
                for label, argv in ((f"dtrun status, {args.runs} runs", ["status"]),
                                    (f"dtrun status --last 20, {args.runs} runs", ["status", "--last", "20"]),
                                    ("dtrun --help", ["--help"])):
                    figures[name].setdefault(label, []).append(timed([*dtrun, *argv], root, env))
        for env in versions.values():
            remove_store_objects(env["DTRUN_STORE"])

    floor = statistics.median(raw)
    print(f"floor: `docker run --rm {IMAGE} true`, median {floor:.3f} s of {args.repeat}\n")
    names = list(versions)
    print("| case | " + " | ".join(f"{n}: median wall, x the floor" for n in names) + " | target |")
    print("|---|" + "---|" * (len(names) + 1))
    targets = {"cached": "< 0.3 s (issue 19)", "dtrun status,": "< 0.2 s (issue 19)", "dtrun --help": "< 0.15 s"}
    for case in figures[names[-1]]:
        cells = [f"{statistics.median(figures[n][case]):.3f} s, {statistics.median(figures[n][case]) / floor:.2f}x"
                 for n in names]
        target = next((t for k, t in targets.items() if case.startswith(k)), "")
        print(f"| {case} | " + " | ".join(cells) + f" | {target} |")
    print("\ncontainers started by the cached re-runs: " + ", ".join(f"{n}: {started[n]}" for n in names)
          + " (target 0)")
    print("(wall times include waiting for a CPU on this shared machine: compare within a row)")


if __name__ == "__main__":
    main()
