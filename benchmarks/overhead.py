"""Overhead of `dtrun run hello` (image already built) against `docker run --rm` of the same image.

The dtrun side runs with `--no-cache`: an unchanged job would otherwise be a cache hit that starts no
container at all (measured separately in benchmarks/lifecycle.py).

Prints the medians, their ratio, and where dtrun's time goes (CLI start-up, spec, snapshot, image
lookup, container create/copy/start/wait, outputs and records). Run with `make bench`.
"""

from __future__ import annotations

import json
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
    project = scratch_project(WORKFLOWS)
    store = Path(tempfile.mkdtemp(prefix="dtrun-bench-store-"))
    env = bench_env(store)
    dtrun = [sys.executable, "-m", "dtrun"]
    try:
        run_quiet([*dtrun, "run", "hello"], env, project)  # builds the image once
        image = json.loads(next(store.glob("repos/**/jobs/*/job.json")).read_text())["image"]
        docker = shutil.which("docker") or "docker"
        run_quiet([docker, "run", "--rm", image, "true"])
        raw = timed(lambda: run_quiet([docker, "run", "--rm", image, "bash", "-c", "echo hello"]), REPEAT)
        ours = timed(lambda: run_quiet([*dtrun, "run", "hello", "--no-cache"], env, project), REPEAT)
        print(f"dtrun run hello vs docker run --rm (image {image}, median of {REPEAT})")
        print(row("docker run --rm IMAGE bash -c 'echo hello'", median(raw)))
        print(row("dtrun run hello --no-cache", median(ours), median(raw)))
        print()
        breakdown(project, env, image)
    finally:
        shutil.rmtree(project, ignore_errors=True)
        remove_store_objects(store)
        shutil.rmtree(store, ignore_errors=True)


def breakdown(project: Path, env: dict[str, str], image: str) -> None:
    """The same steps in-process, each timed, to show where the time goes."""
    import os

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

    t = step("import engine, docker-py, pydantic", t)
    context = Session(project)
    spec = context.spec()
    plan = build_plan(spec, "hello")
    t = step("find project, load spec, plan", t)
    snapshot = context.snapshot()
    snapshot.pack()
    t = step("git snapshot (ls-files, status, tar)", t)
    backend = context.backend
    t = step("connect to the daemon", t)
    backend.ensure_image(plan.jobs[0].image, context.settings, output=lambda _: None)
    t = step("image lookup (already built)", t)
    store = context.store
    Engine(context.settings, store, backend, snapshot).run(plan, no_cache=True)
    step("run: records, container create/copy/start/wait/remove", t)
    for label, seconds in steps:
        print(row(label, seconds))


if __name__ == "__main__":
    main()
