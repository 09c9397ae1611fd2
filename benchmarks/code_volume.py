"""The daemon side of code shipping by content (dtrun/backends/docker/codevolumes.py), before the engine uses it:
landing a repository's tree in its code volume the first time, again with nothing changed, and with one
file changed; then a job's view of it (overlay volume, or the copy fallback). Set against shipping the
tree by hand in the same session: `tar c . | docker cp - CONTAINER:/workspace`.

Each put runs in a fresh process (snapshot with the digest index, then the upload), so its wall time,
CPU and peak memory are what a `dtrun run` would add. "One file changed" is measured `--changes` times in
a row per volume (each put stacks a layer on the last), then once with the stack full (the put that
writes a whole tree again, one in every `MAX_LAYERS`). `--before REV` also measures the puts of a git
revision's dtrun (exported, first on PYTHONPATH), interleaved with this one's, in the same session.

    python benchmarks/code_volume.py [--repeat 3] [--changes 4] [--no-big] [--before REV]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _measure import machine, measure
from repo_scale import add_big_untracked, floor_copy, make_repo

BUSYBOX = os.environ.get("DTRUN_TEST_BUSYBOX", "dtrun-local/busybox:latest")
#: the run's label: a child (`--child`, one put) takes its parent's, so the clean-up finds what it made
STORE_VAR = "DTRUN_BENCH_CODEVOL_STORE"
LABELS = {"dev.dtrun": "1",
          "dev.dtrun.store": os.environ.get(STORE_VAR) or f"bench-codevol-{uuid.uuid4().hex[:8]}"}


def child(root: Path, volume: str, compact: bool = False) -> None:
    if compact:  # this put finds the stack full and writes a whole tree, as every 16th put does
        import dtrun.code.volume

        dtrun.code.volume.MAX_LAYERS = 1

    from dtrun.backends.docker.codevolumes import DockerCodeVolumes
    from dtrun.backends.docker.connection import connect
    from dtrun.snapshot import take_snapshot

    start = time.perf_counter()
    snap = take_snapshot(root, root)
    manifest = snap.manifest
    hashed = time.perf_counter()
    ref = DockerCodeVolumes(connect(), BUSYBOX).put_code(volume, root, manifest, LABELS)  # the revision's client
    done = time.perf_counter()
    print(json.dumps({"snapshot": hashed - start, "put": done - hashed,
                      "sent": ref.sent.bytes_to_send if ref.sent else 0, "tree": ref.tree_id,
                      "build": ref.build}))


def export_revision(rev: str, target: Path) -> str:
    target.mkdir(parents=True)
    top = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(top), "archive", rev, "dtrun"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "x", "-C", str(target)], input=archive, check=True)
    return str(target)


def put(root: Path, volume: str, env: dict[str, str], compact: bool = False) -> dict[str, float | str]:
    with tempfile.NamedTemporaryFile("r") as out:
        sample = measure(["sh", "-c", f'"$0" "$1" --child "$2" "$3" "$4" > {out.name}', sys.executable, __file__,
                          str(root), volume, "compact" if compact else "layer"],
                         env={**env, STORE_VAR: LABELS["dev.dtrun.store"]})
        figures: dict[str, float | str] = json.loads(out.read())
    return {**figures, "wall": sample.wall, "cpu": sample.cpu, "peak_mb": sample.peak_mb}


def median_of(rows: list[dict[str, float | str]]) -> dict[str, float | str]:
    out: dict[str, float | str] = {}
    for key, value in rows[0].items():
        if isinstance(value, str):
            out[key] = value
        else:
            values = [float(r[key]) for r in rows]
            out[key] = max(values) if key == "peak_mb" else statistics.median(values)
    return out


def views(volume: str, tree: str, build: str, repeat: int) -> dict[str, float]:
    from dtrun.backends.docker.codevolumes import DockerCodeVolumes
    from dtrun.backends.docker.connection import connect
    from dtrun.backends.docker.engineapi.create import Mount
    from dtrun.code.protocol import CodeRef

    client = connect()
    out: dict[str, list[float]] = {}
    for overlay in (True, False):
        backend = DockerCodeVolumes(client, BUSYBOX, overlay=overlay)
        for i in range(repeat):
            name = f"{volume}-bench-{overlay}-{i}"
            start = time.perf_counter()
            backend.code_view(CodeRef(volume, tree, build, None), name, LABELS)
            made = time.perf_counter()
            client.containers.run(BUSYBOX, ["true"], remove=True, labels=LABELS,
                                  mounts=[Mount(target="/workspace", source=name, type="volume")])
            ran = time.perf_counter()
            backend.remove_code_view(name)
            kind = "overlay view" if overlay else "copy view (fallback)"
            out.setdefault(f"{kind}: make", []).append(made - start)
            out.setdefault(f"{kind}: docker run true with it", []).append(ran - made)
    for _ in range(repeat):
        start = time.perf_counter()
        client.containers.run(BUSYBOX, ["true"], remove=True, labels=LABELS)
        out.setdefault("docker run true, no volume", []).append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--changes", type=int, default=4, help="one-file puts in a row per volume")
    parser.add_argument("--no-big", action="store_true")
    parser.add_argument("--before", metavar="REV", help="also measure this git revision's puts")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1], args.child[2] == "compact")
        return
    base = Path(tempfile.mkdtemp(prefix="dtrun-bench-codevol-"))
    variants = {"after": {**os.environ, "DTRUN_DATA_DIR": str(base / "data")}}
    if args.before:
        variants = {f"before ({args.before})": {**os.environ, "DTRUN_DATA_DIR": str(base / "data"),
                                                "PYTHONPATH": export_revision(args.before, base / "before")},
                    **variants}
    try:
        repos = {"10,000 files": make_repo(base, "many", 10_000)}
        if not args.no_big:
            big = make_repo(base, "big", 10_000)
            add_big_untracked(big, 1024**3)
            repos["10,000 files + 1 GB untracked"] = big
        time.sleep(2.1)  # older than the digest index's racy window
        print(f"machine: {machine()}\n")
        print("| repository | step | version | wall | CPU | peak memory | of which snapshot | upload | bytes sent |")
        print("|---|---|---|---|---|---|---|---|---|")
        tree = build = volume = ""
        counter = iter(range(10**6))
        for name, root in repos.items():
            floor = floor_copy(root, args.repeat)
            print(f"| {name} | floor: `tar c . \\| docker cp -` | | {floor.wall:.2f} s | {floor.cpu:.2f} s | "
                  f"{floor.peak_mb:.0f} MB | | | |")
            steps: dict[tuple[str, str], list[dict[str, float | str]]] = {}
            for i in range(args.repeat):
                for version, env in variants.items():
                    volume = f"dtrun-code-bench-{uuid.uuid4().hex[:12]}"
                    shutil.rmtree(base / "data", ignore_errors=True)
                    steps.setdefault(("first put (empty volume, no index)", version), []).append(put(root, volume, env))
                    time.sleep(2.1)
                    steps.setdefault(("put again, nothing changed", version), []).append(put(root, volume, env))
                    for _ in range(args.changes):
                        (root / "main.py").write_text(f"print({next(counter)})\n")
                        row = put(root, volume, env)
                        steps.setdefault(("put, one file changed", version), []).append(row)
                    if version == "after":
                        (root / "main.py").write_text(f"print({next(counter)})\n")
                        steps.setdefault(("put, one file changed, the stack full: a whole tree (every 16th)",
                                          version), []).append(put(root, volume, env, compact=True))
                        (root / "main.py").write_text(f"print({next(counter)})\n")
                        row = put(root, volume, env)
                    tree, build = str(row["tree"]), str(row["build"])
                    if i < args.repeat - 1 or version != "after":
                        subprocess.run(f"docker rm -f {volume}-anchor; docker volume rm {volume}", shell=True,
                                       capture_output=True)
            names = list(dict.fromkeys(step for step, _ in steps))
            for step, version in sorted(steps, key=lambda k: (names.index(k[0]), list(variants).index(k[1]))):
                r = median_of(steps[step, version])
                print(f"| {name} | {step} | {version} | {float(r['wall']):.2f} s "
                      f"({float(r['wall']) / floor.wall:.2f}x floor) | {float(r['cpu']):.2f} s | "
                      f"{float(r['peak_mb']):.0f} MB | {float(r['snapshot']):.2f} s | {float(r['put']):.2f} s | "
                      f"{float(r['sent']) / 1e6:.1f} MB |")
            depth = f" (a tree of {build.count(':') + 1} layers)"
            for step, seconds in views(volume, tree, build, args.repeat).items():
                print(f"| {name} | {step}{depth if 'view' in step else ''} | after | {seconds:.2f} s | | | | | |")
        print("\n(wall includes interpreter start and the snapshot; the floor ships the tree and nothing else)")
    finally:
        store = LABELS["dev.dtrun.store"]  # the views' containers carry it; the code volumes' anchors say it so
        subprocess.run(f"docker ps -aq --filter label=dev.dtrun.store={store} | xargs -r docker rm -f; "
                       f"docker ps -aq --filter label=dev.dtrun.anchor.store={store} | xargs -r docker rm -f; "
                       f"docker volume ls -q --filter label=dev.dtrun.store={store} | xargs -r docker volume rm -f",
                       shell=True, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
