"""The per-run cost as the repository grows: 1 file, 10,000 small files, and the same plus one
untracked 1 GB file (a `data/` folder, common in ML repositories).

Each row is a `dtrun` command as a user types it (interpreter start included), with its CPU time and
the client's peak memory, set against the floor measured in the same session on the same repository:
`tar c . | docker cp - CONTAINER:/workspace` (shipping the tree by hand) and `docker run --rm`.

`--before REV` also measures the code of a git revision (e.g. the last commit before a change), from
an exported copy put first on PYTHONPATH, so before and after come from one session.

    python benchmarks/repo_scale.py [--repeat 5] [--big-repeat 3] [--no-big] [--before REV]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from _common import BASE_IMAGE, remove_store_objects
from _measure import Sample, Summary, machine, measure, shell

WORKFLOWS = "workflows:\n  - name: hello\n    provider: bash\n    commands:\n      - echo hello\n"
LABEL = f"dtrun-bench-{uuid.uuid4().hex[:8]}"


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=b", "-c", "user.email=b@b", *args], check=True,
                   capture_output=True)


def make_repo(base: Path, name: str, small_files: int) -> Path:
    root = base / name
    (root / ".dtrun").mkdir(parents=True)
    (root / ".dtrun" / "workflows.yaml").write_text(WORKFLOWS)
    (root / "main.py").write_text("print('hello')\n")
    for i in range(small_files):
        folder = root / "src" / f"m{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.py").write_text(f"# file {i}\n" + "x = 1\n" * 30)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "bench")
    return root


def add_big_untracked(root: Path, size: int) -> None:
    (root / "data").mkdir(exist_ok=True)
    chunk = os.urandom(1024 * 1024)
    with (root / "data" / "big.bin").open("wb") as handle:
        for _ in range(size // len(chunk)):
            handle.write(chunk)


def floor_copy(root: Path, repeat: int) -> Summary:
    """`tar c . | docker cp - C:/workspace` into a created (not started) container of the base image."""
    samples = []
    for _ in range(repeat):
        container = subprocess.run(["docker", "create", "--label", LABEL, BASE_IMAGE, "true"], check=True,
                                   capture_output=True, text=True).stdout.strip()
        try:
            samples.append(shell(f"tar c --exclude=.git . | docker cp - {container}:/tmp", cwd=root))
        finally:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    return Summary.of(samples)


class Variant:
    """One version of dtrun: the working tree, or a git revision exported to a folder."""

    def __init__(self, name: str, base: Path, pythonpath: str | None) -> None:
        self.name = name
        self.data = base / f"data-{name}"
        self.store = base / f"store-{name}"
        self.env = {**os.environ, "DTRUN_STORE": str(self.store), "DTRUN_DATA_DIR": str(self.data),
                    "XDG_CONFIG_HOME": str(base / "config"), "DTRUN_BASE_IMAGE": BASE_IMAGE, "NO_COLOR": "1"}
        self.env.pop("DTRUN_HOST", None)
        if pythonpath:
            self.env["PYTHONPATH"] = pythonpath

    def run(self, root: Path, *args: str) -> Sample:
        return measure([sys.executable, "-m", "dtrun", "run", "hello", *args], env=self.env, cwd=root)

    def forget_index(self) -> None:
        shutil.rmtree(self.data / "code-index", ignore_errors=True)


def repeat(fn: Callable[[], Sample], n: int, before: Callable[[], None] | None = None) -> Summary:
    samples = []
    for _ in range(n):
        if before:
            before()
        samples.append(fn())
    return Summary.of(samples)


def touch_one(root: Path) -> Callable[[], None]:
    counter = iter(range(10**6))

    def change() -> None:
        (root / "main.py").write_text(f"print('hello {next(counter)}')\n")

    return change


def measure_all(variants: list[Variant], repos: dict[str, Path], n: int, big_n: int) -> dict[str, dict[str, Summary]]:
    """Every row for every variant, the variants interleaved run by run (the machine's load drifts:
    measuring one version after the other would credit the drift to the code)."""
    samples: dict[str, dict[str, list[Sample]]] = {v.name: {} for v in variants}

    def row(label: str, root: Path, args: list[str], times: int, before: Callable[[], None] | None = None) -> None:
        for _ in range(times):
            for v in variants:
                if before:
                    before()
                samples[v.name].setdefault(label, []).append(v.run(root, *args))

    one, many = repos["1 file"], repos["10,000 files"]
    for v in variants:
        v.run(one)  # builds (or finds) the image; warms the probes
        v.run(many)
    row("1 file: run --no-cache", one, ["--no-cache"], n)
    row("1 file: cache hit", one, [], n)
    row("10k files: run --no-cache, one file changed", many, ["--no-cache"], n, touch_one(many))
    for v in variants:
        v.run(many)
    row("10k files: cache hit", many, [], n)
    big = repos.get("10,000 files + 1 GB untracked")
    if big is not None:
        for v in variants:
            v.forget_index()
            samples[v.name].setdefault("+1 GB: first run", []).append(v.run(big, "--no-cache"))
        row("+1 GB: later run, nothing changed", big, ["--no-cache"], big_n)
        row("+1 GB: cache hit", big, [], big_n)
    return {name: {label: Summary.of(rows) for label, rows in by_row.items()} for name, by_row in samples.items()}


BEFORE_TYPER = "0.29.2"


def export_revision(rev: str, target: Path) -> str:
    target.mkdir(parents=True)
    top = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(top), "archive", rev, "dtrun", "images"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "x", "-C", str(target)], input=archive, check=True)
    # the typer the project installed before issue 19 pinned it below 0.29 (0.29 imports pydantic for every
    # command): the before figures are taken with the CLI library they had
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    f"typer=={BEFORE_TYPER}"], check=True, capture_output=True)
    compile_tree(target)
    return str(target)


def compile_tree(folder: Path) -> None:
    """Write the bytecode of every module under `folder`, as `pip install` does, so that neither side of a
    comparison pays for compiling dtrun on each command."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(folder)], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--big-repeat", type=int, default=3)
    parser.add_argument("--no-big", action="store_true", help="skip the 1 GB repository")
    parser.add_argument("--before", metavar="REV", help="also measure this git revision's dtrun")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="dtrun-bench-scale-"))
    variants: list[Variant] = []
    try:
        repos = {"1 file": make_repo(base, "one", 0), "10,000 files": make_repo(base, "many", 10_000)}
        if not args.no_big:
            big = make_repo(base, "big", 10_000)
            add_big_untracked(big, 1024**3)
            repos["10,000 files + 1 GB untracked"] = big
        raw = repeat(lambda: measure(["docker", "run", "--rm", "--label", LABEL, BASE_IMAGE, "bash", "-c",
                                      "echo hello"]), args.repeat)
        floors = {name: floor_copy(root, args.big_repeat if "GB" in name else args.repeat)
                  for name, root in repos.items()}
        variants = [Variant("after", base, None)]
        if args.before:
            variants.insert(0, Variant(f"before ({args.before})", base,
                                       export_revision(args.before, base / "before")))
        results = measure_all(variants, repos, args.repeat, args.big_repeat)
        report(raw, floors, results)
        if args.json:
            args.json.write_text(json.dumps({"raw": raw.__dict__, "floors": {k: f.__dict__ for k, f in floors.items()},
                                             "results": {k: {r: s.__dict__ for r, s in v.items()}
                                                         for k, v in results.items()}}, indent=1))
    finally:
        subprocess.run(f"docker ps -aq --filter label={LABEL} | xargs -r docker rm -f", shell=True,
                       capture_output=True)
        for variant in variants:
            remove_store_objects(variant.store)  # the code volumes (a copy of the 1 GB repository)
        shutil.rmtree(base, ignore_errors=True)


def report(raw: Summary, floors: dict[str, Summary], results: dict[str, dict[str, Summary]]) -> None:
    print(f"machine: {machine()}\n")
    print("| floor | wall | CPU | peak memory |\n|---|---|---|---|")
    print(f"| `docker run --rm IMAGE bash -c 'echo hello'` | {raw.wall:.2f} s | {raw.cpu:.2f} s | "
          f"{raw.peak_mb:.0f} MB |")
    for name, f in floors.items():
        print(f"| `tar c . \\| docker cp - C:/workspace`, {name} | {f.wall:.2f} s | {f.cpu:.2f} s | "
              f"{f.peak_mb:.0f} MB |")
    print()
    names = list(results)
    print("| case | " + " | ".join(f"{n}: wall (CPU), peak, ratio" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    rows = list(next(iter(results.values())))
    for row in rows:
        cells = []
        for n in names:
            s = results[n].get(row)
            if s is None:
                cells.append("—")
                continue
            how = ratio(row, s, raw, floors, results[n])
            cells.append(f"{s.wall:.2f} s ({s.cpu:.2f} s), {s.peak_mb:.0f} MB, {how}")
        print(f"| {row} | " + " | ".join(cells) + " |")
    print("\nratios: `--no-cache` runs against `docker run`; 10k against the 1-file run; 1 GB first run against "
          "the floor copy of that repository; later 1 GB runs as seconds added over the 1-file run.")


def ratio(row: str, s: Summary, raw: Summary, floors: dict[str, Summary], mine: dict[str, Summary]) -> str:
    one = mine.get("1 file: run --no-cache")
    if row == "1 file: run --no-cache":
        return f"{s.wall / raw.wall:.2f}x docker run"
    if row.startswith("10k") and "cache hit" not in row and one:
        return f"{s.wall / one.wall:.2f}x the 1-file run"
    if row == "+1 GB: first run":
        floor = floors["10,000 files + 1 GB untracked"]
        return f"{s.wall / floor.wall:.2f}x tar|docker cp"
    if row.startswith("+1 GB") and one:
        base = mine["1 file: cache hit"] if "cache hit" in row else one
        return f"+{s.wall - base.wall:.2f} s over 1 file"
    return ""


if __name__ == "__main__":
    main()
