"""Overhead of `dtrun run hello` (image already built) against `docker run --rm` of the same image.

The dtrun side runs with `--no-cache`: an unchanged job would otherwise be a cache hit that starts no
container at all (measured separately in benchmarks/lifecycle.py).

Prints the medians, their ratio, and where dtrun's time goes (CLI start-up, spec, snapshot, image
lookup, container create/copy/start/wait, outputs and records). Run with `make bench`.

`--before REV` also measures that revision's dtrun, interleaved run by run with this one and with
`docker run` (each version with its own store and data folder), and adds the cache hit of `hello`
(`dtrun run hello` again: no container) for both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import bench_env, median, remove_store_objects, row, run_quiet, scratch_project, timed

REPEAT = 7
WORKFLOWS = """
workflows:
  - name: hello
    provider: bash
    commands:
      - echo hello
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=REPEAT)
    parser.add_argument("--before", metavar="REV", help="also measure this git revision's dtrun (interleaved)")
    args = parser.parse_args()
    project = scratch_project(WORKFLOWS)
    base = Path(tempfile.mkdtemp(prefix="dtrun-bench-store-"))
    store = base / "store-after"
    env = bench_env(store)
    versions = {"": env}
    if args.before:
        from repo_scale import export_revision

        versions = {f" (before, {args.before})": {**bench_env(base / "store-before"), "DTRUN_DATA_DIR": str(
            base / "data-before"), "PYTHONPATH": export_revision(args.before, base / "before")},
            " (after)": {**env, "DTRUN_DATA_DIR": str(base / "data-after")}}
    dtrun = [sys.executable, "-m", "dtrun"]
    try:
        for each in versions.values():
            run_quiet([*dtrun, "run", "hello"], each, project)  # builds the image once, records the job
        image = json.loads(next(store.glob("repos/**/jobs/*/job.json")).read_text())["image"]
        docker = shutil.which("docker") or "docker"
        run_quiet([docker, "run", "--rm", image, "true"])
        raw: list[float] = []
        ours: dict[str, list[float]] = {}
        hits: dict[str, list[float]] = {}
        for _ in range(args.repeat):  # interleaved, so the machine's load drift falls on all alike
            raw.append(once([docker, "run", "--rm", image, "bash", "-c", "echo hello"], os.environ.copy(), None,
                            "docker"))
            for name, each in versions.items():
                ours.setdefault(name, []).append(once([*dtrun, "run", "hello", "--no-cache"], each, project,
                                                      f"no-cache{name}"))
                if args.before:
                    hits.setdefault(name, []).append(once([*dtrun, "run", "hello"], each, project, f"hit{name}"))
        print(f"dtrun run hello vs docker run --rm (image {image}, median of {args.repeat}; CPU: the client's)")
        print(row("docker run --rm IMAGE bash -c 'echo hello'", median(raw)) + cpu("docker"))
        for name, times in ours.items():
            print(row(f"dtrun run hello --no-cache{name}", median(times), median(raw)) + cpu(f"no-cache{name}"))
        for name, times in hits.items():
            print(row(f"dtrun run hello, a cache hit{name}", median(times)) + cpu(f"hit{name}"))
        print()
        breakdown(project, env, image)
    finally:
        shutil.rmtree(project, ignore_errors=True)
        for each in versions.values():
            remove_store_objects(each["DTRUN_STORE"])
        shutil.rmtree(base, ignore_errors=True)


CPU: dict[str, list[float]] = {}


def once(argv: list[str], env: dict[str, str], cwd: Path | None, cpu: str) -> float:
    """Wall time of one command; its CPU time (user + system, children) goes to CPU[cpu]: on a loaded
    machine wall time includes waiting for a core, CPU time does not."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run_quiet(argv, env, cwd)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(cpu, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return elapsed


def cpu(key: str) -> str:
    return f"  (CPU {median(CPU[key]) * 1000:.0f} ms)"


def breakdown(project: Path, env: dict[str, str], image: str) -> None:
    """The same steps in-process, each timed, to show where the time goes."""
    os.environ.update(env)
    print("where dtrun's time goes (one run, in-process):")
    startup = timed(lambda: run_quiet([sys.executable, "-c", "import dtrun.cli"]), 3)
    bare = timed(lambda: run_quiet([sys.executable, "-c", "pass"]), 3)
    print(row("python start-up", median(bare)))
    print(row("import dtrun.cli (beyond python start-up)", median(startup) - median(bare)))

    steps: list[tuple[str, float]] = []

    def step(label: str, start: float) -> float:
        now = time.perf_counter()
        steps.append((label, now - start))
        return now

    t = time.perf_counter()
    from dtrun.api import Session
    from dtrun.engine import Engine
    from dtrun.plan import build_plan

    t = step("import the engine and the spec", t)
    context = Session(project)
    spec = context.spec()
    plan = build_plan(spec, "hello")
    t = step("find project, load spec, plan", t)
    snapshot = context.snapshot()
    snapshot.pack()
    t = step("git snapshot (ls-files, status, tar)", t)
    backend = context.backend
    getattr(backend, "client", None)  # the Docker backend connects on first use: here, to time it alone
    t = step("connect: the client's modules, /_ping", t)
    backend.ensure_image(plan.jobs[0].image, context.settings, output=lambda _: None)
    t = step("image lookup (already built)", t)
    store = context.store
    Engine(context.settings, store, backend, snapshot).run(plan, no_cache=True)
    step("run: records, container create/copy/start/wait/remove", t)
    for label, seconds in steps:
        print(row(label, seconds))


if __name__ == "__main__":
    main()
