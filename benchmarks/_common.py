"""Helpers shared by the benchmarks: a throwaway project, timing, and medians."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

BASE_IMAGE = os.environ.get("DTRUN_BASE_IMAGE", "dtrun-local/base:bookworm")


def scratch_project(workflows: str, files: dict[str, str] | None = None) -> Path:
    root = Path(tempfile.mkdtemp(prefix="dtrun-bench-"))
    (root / ".dtrun").mkdir()
    (root / ".dtrun" / "workflows.yaml").write_text(textwrap.dedent(workflows).lstrip())
    for name, content in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "bench"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, env=env, capture_output=True)
    return root


def bench_env(store: Path) -> dict[str, str]:
    return {**os.environ, "DTRUN_STORE": str(store), "DTRUN_BASE_IMAGE": BASE_IMAGE, "NO_COLOR": "1"}


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def run_quiet(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def median(values: list[float]) -> float:
    return statistics.median(values)


def row(label: str, seconds: float, reference: float | None = None) -> str:
    ratio = f"{seconds / reference:6.2f}x" if reference else ""
    return f"  {label:46} {seconds * 1000:9.1f} ms {ratio}"


def remove_store_objects(store: Path | str) -> None:
    """What a benchmark's store made on the shared daemon, and only that: its containers, the anchors of
    its code volumes (labelled `dev.dtrun.anchor.store`), then its volumes (a code volume holds a copy of
    the benchmark's repository: 1 GB for the big case)."""
    import hashlib

    import docker

    label = hashlib.sha256(str(store).encode()).hexdigest()[:12]
    client = docker.from_env()
    for key in ("dev.dtrun.store", "dev.dtrun.anchor.store"):
        for container in client.containers.list(all=True, filters={"label": f"{key}={label}"}):
            container.remove(force=True)
    for volume in client.volumes.list(filters={"label": f"dev.dtrun.store={label}"}):
        volume.remove(force=True)
