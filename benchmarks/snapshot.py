"""The client side of code shipping, alone: listing, hashing and packing a repository of 10,000 small
files, and the same plus one untracked 1 GB file, on the first pass (nothing known) and the second
(nothing changed: the digest index vouches for every file). Each pass is a fresh process, so its peak
memory is its own.

`--before REV` measures a git revision's `dtrun/snapshot.py` in the same session.

    python benchmarks/snapshot.py [--repeat 3] [--no-big] [--before REV]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _measure import machine, measure
from repo_scale import add_big_untracked, export_revision, make_repo


def child(root: Path) -> None:
    """Runs in the measured process: take the snapshot, digest it, pack it; print the times."""
    from dtrun.snapshot import take_snapshot

    start = time.perf_counter()
    snap = take_snapshot(root, root)
    listed = time.perf_counter()
    _ = snap.digest
    digested = time.perf_counter()
    data, _ = snap.pack()
    data.close()
    packed = time.perf_counter()
    print(json.dumps({"list": listed - start, "digest": digested - listed, "pack": packed - digested}))


def passes(root: Path, env: dict[str, str], data_dir: Path, repeat: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in ("first pass", "second pass, nothing changed"):
        rows = []
        for _ in range(repeat):
            if name == "first pass":
                shutil.rmtree(data_dir / "code-index", ignore_errors=True)
            with tempfile.NamedTemporaryFile("r") as result:
                sample = measure(["sh", "-c", f'"$0" "$1" --child "$2" > {result.name}', sys.executable, __file__,
                                  str(root)], env=env)
                times = json.loads(result.read())
            rows.append({**times, "wall": sample.wall, "cpu": sample.cpu, "peak_mb": sample.peak_mb})
            if name == "first pass":  # the second pass then finds the index of this one
                time.sleep(2.1)  # files must be older than the racy window for the index to keep them
        out[name] = {k: (max if k == "peak_mb" else statistics.median)(r[k] for r in rows) for k in rows[0]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-big", action="store_true")
    parser.add_argument("--before", metavar="REV")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    base = Path(tempfile.mkdtemp(prefix="dtrun-bench-snap-"))
    try:
        repos = {"10,000 files": make_repo(base, "many", 10_000)}
        if not args.no_big:
            big = make_repo(base, "big", 10_000)
            add_big_untracked(big, 1024**3)
            repos["10,000 files + 1 GB untracked"] = big
        time.sleep(2.1)
        variants: dict[str, str | None] = {"after": None}
        if args.before:
            variants = {f"before ({args.before})": export_revision(args.before, base / "before"), **variants}
        print(f"machine: {machine()}\n")
        print("| repository | pass | version | wall | CPU | peak memory | list | digest | pack |")
        print("|---|---|---|---|---|---|---|---|---|")
        for repo_name, root in repos.items():
            for version, pythonpath in variants.items():
                data_dir = base / f"data-{len(version)}"
                env = {**os.environ, "DTRUN_DATA_DIR": str(data_dir)}
                if pythonpath:
                    env["PYTHONPATH"] = pythonpath
                for pass_name, r in passes(root, env, data_dir, args.repeat).items():
                    print(f"| {repo_name} | {pass_name} | {version} | {r['wall']:.2f} s | {r['cpu']:.2f} s | "
                          f"{r['peak_mb']:.0f} MB | {r['list']:.2f} s | {r['digest']:.2f} s | {r['pack']:.2f} s |")
        print("\n(before: digest and pack are one step, shown under digest. Wall includes interpreter start.)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
