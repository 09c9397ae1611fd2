"""Artifact speed against raw Docker: export of 1 GiB in one file and of 10,000 small files (vs
`docker cp` of the same folder), and mounting an already-materialised 1 GiB dep.

    .venv/bin/python benchmarks/artifacts.py [--size-mib 1024] [--files 10000] [--repeat 5]
                                             [--only big small mount]

What each side does, from the same stopped container (its output folder in a volume):

- `docker cp CONTAINER:/workspace/out DIR`: the daemon streams a tar; the docker CLI extracts it into
  DIR (files written, nothing hashed or checked).
- `docker cp CONTAINER:/workspace/out - > out.tar`: the same stream written as one tar file (the
  floor for keeping a tar, as the store does).
- dtrun, Docker API (`get_archive`, the remote-safe path, what a remote daemon gets): the same stream;
  every member checked (names, links, types), every file's sha256 computed, the stored tar written
  into the store (`jobs/<job>/artifacts/<key>-<digest>.tar`), then the manifest (file list, digests).
- dtrun, volume read directly (the local fast path): the same checks, hashing and stored tar, reading
  the volume's folder instead of the daemon's stream.

Every timing starts from an empty destination (the previous copy is removed before the clock starts,
on both sides). Ratios > 1 mean dtrun is faster. "client CPU" is what the copying side spent (user +
system, all threads: the docker CLI, or this process for dtrun); the daemon's own work (its tar of the
folder) is the same for the three streamed cases and is not in it. Everything it creates is labelled
`dev.dtrun.bench=<id>` and removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dtrun.backends.docker import DockerBackend
from dtrun.engine.artifacts import InputArtifact, export_artifact, mount_inputs
from dtrun.store import Store

IMAGE = os.environ.get("DTRUN_TEST_BUSYBOX", "dtrun-local/busybox:latest")
RUN_ID = uuid.uuid4().hex[:8]
LABELS = {"dev.dtrun.bench": RUN_ID}


def timed(fn: Callable[[], Any], repeat: int, reset: Callable[[], Any] = lambda: None) -> float:
    """The median wall time of `repeat` calls, each after `reset` (not timed)."""
    times = []
    for _ in range(repeat):
        reset()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    reset()
    return statistics.median(times)


def client_cpu() -> float:
    """CPU seconds (user + system) of this process and of its finished children."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def interleaved(cases: dict[str, tuple[Callable[[], Any], Callable[[], Any]]],
                repeat: int) -> dict[str, tuple[float, float]]:
    """The median wall time and client CPU of each case's call (after its reset, not timed), the cases
    taking turns round by round: a machine whose load drifts then weighs on every case alike."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, (fn, reset) in cases.items():
            reset()
            cpu, start = client_cpu(), time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start, client_cpu() - cpu))
            reset()
    return {name: (statistics.median(t for t, _ in values), statistics.median(c for _, c in values))
            for name, values in times.items()}


def emptied(*paths: Path) -> Callable[[], None]:
    """A reset that removes what the previous call wrote and makes the folders again, empty."""
    def reset() -> None:
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
    return reset


@contextmanager
def filled_container(client: Any, script: str) -> Iterator[Any]:
    """A stopped container whose volume at /workspace holds what `script` wrote into /workspace/out."""
    volume = client.volumes.create(name=f"dtrun-bench-{RUN_ID}-{uuid.uuid4().hex[:6]}", labels=LABELS)
    from dtrun.backends.docker.engineapi.create import Mount

    container = client.containers.create(IMAGE, ["/bin/sh", "-c", script], entrypoint=[], labels=LABELS,
                                         mounts=[Mount("/workspace", volume.name, type="volume")],
                                         working_dir="/workspace", network_disabled=True)
    try:
        container.start()
        code = container.wait()["StatusCode"]
        if code != 0:
            raise SystemExit(f"filling the volume failed ({code}): {container.logs().decode()[-2000:]}")
        yield container
    finally:
        container.remove(force=True)
        volume.remove(force=True)


def docker_cp(container: Any, dest: Path) -> None:
    subprocess.run(["docker", "cp", f"{container.id}:/workspace/out", str(dest)], check=True,
                   stdout=subprocess.DEVNULL)


def docker_cp_tar(container: Any, dest: Path) -> None:
    with open(dest / "out.tar", "wb") as out:
        subprocess.run(["docker", "cp", f"{container.id}:/workspace/out", "-"], check=True, stdout=out)


def dtrun_export(backend: DockerBackend, store: Store, container: Any, local: bool) -> None:
    if local:
        os.environ.pop("DTRUN_NO_LOCAL_VOLUMES", None)
    else:
        os.environ["DTRUN_NO_LOCAL_VOLUMES"] = "1"
    try:
        record = export_artifact(backend, container, store, "bench", "out", "/workspace/out")
    finally:
        os.environ.pop("DTRUN_NO_LOCAL_VOLUMES", None)
    assert record is not None


def export_case(name: str, script: str, client: Any, backend: DockerBackend, tmp: Path, repeat: int,
                size: int = 0, files: int = 0) -> None:
    store = Store(str(tmp / "store"), "bench/artifacts")
    cp_dir, store_dir = tmp / "cp", tmp / "store"
    with filled_container(client, script) as container:
        assert backend.local_path(container, "/workspace/out") is not None, "the fast path is not available"
        medians = interleaved({
            "cp": (lambda: docker_cp(container, cp_dir), emptied(cp_dir)),
            "cp_tar": (lambda: docker_cp_tar(container, cp_dir), emptied(cp_dir)),
            "api": (lambda: dtrun_export(backend, store, container, local=False), emptied(store_dir)),
            "fast": (lambda: dtrun_export(backend, store, container, local=True), emptied(store_dir)),
        }, repeat)
    (cp, cp_cpu), (cp_tar, cp_tar_cpu) = medians["cp"], medians["cp_tar"]
    (api, api_cpu), (fast, fast_cpu) = medians["api"], medians["fast"]
    shutil.rmtree(cp_dir, ignore_errors=True)
    shutil.rmtree(store_dir, ignore_errors=True)
    def rate(seconds: float) -> str:
        return f"{size / (1 << 20) / seconds:7.0f} MiB/s" if size else f"{files / seconds:7.0f} files/s"

    print(f"\nexport, {name} (medians of {repeat}):")
    print(f"  docker cp, extracted into a folder        {cp:6.2f} s  {rate(cp)}   client CPU {cp_cpu:5.2f} s")
    print(f"  docker cp -, written as one tar           {cp_tar:6.2f} s  {rate(cp_tar)}   "
          f"client CPU {cp_tar_cpu:5.2f} s")
    print("  dtrun, checked, sha256 per file, stored tar + manifest:")
    print(f"    Docker API (remote-safe)                {api:6.2f} s  {rate(api)}   client CPU {api_cpu:5.2f} s"
          f"   ratio vs docker cp {cp / api:5.2f}x  (vs docker cp - {cp_tar / api:4.2f}x)")
    print(f"    volume read directly (local fast path)  {fast:6.2f} s  {rate(fast)}   client CPU {fast_cpu:5.2f} s"
          f"   ratio vs docker cp {cp / fast:5.2f}x")


def mount_case(client: Any, backend: DockerBackend, tmp: Path, size_mib: int, repeat: int) -> None:
    store = Store(str(tmp / "store"), "bench/artifacts")
    script = f"mkdir -p out && dd if=/dev/urandom of=out/big.bin bs=1048576 count={size_mib} 2>/dev/null"
    with filled_container(client, script) as container:
        record = export_artifact(backend, container, store, "dep", "out", "/workspace/out")
    assert record is not None
    item = InputArtifact(repo=store.repo, job_id="dep", record=record)
    volume = f"dtrun-art-{record.digest[:32]}"
    try:
        start = time.perf_counter()
        mount_inputs(backend, store, [item], IMAGE, LABELS)
        first = time.perf_counter() - start
        again = timed(lambda: mount_inputs(backend, store, [item], IMAGE, LABELS), max(repeat, 5))
        run = timed(lambda: client.containers.run(IMAGE, ["true"], entrypoint=[], remove=True, labels=LABELS),
                    repeat)
    finally:
        backend.remove_volume(volume)
        shutil.rmtree(tmp / "store", ignore_errors=True)
    print(f"\nmount a {size_mib} MiB dep:")
    print(f"  first time (materialise into a volume)  {first:7.3f} s")
    print(f"  already materialised (reuse, no copy)   {again:7.3f} s   target < 0.2 s: "
          f"{'met' if again < 0.2 else 'MISSED'}")
    print(f"  for scale, `docker run --rm IMAGE true` {run:7.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", nargs="+", choices=["big", "small", "mount"], default=["big", "small", "mount"],
                        help="run only these cases: the export of one big file, of many small ones, the mount")
    args = parser.parse_args()
    from dtrun.backends.docker.connection import connect

    client = connect()  # dtrun's own Engine API client, the one a run uses
    backend = DockerBackend(client, "unix:///var/run/docker.sock")
    with tempfile.TemporaryDirectory(prefix="dtrun-bench-") as folder:
        tmp = Path(folder)
        if "big" in args.only:
            export_case(f"{args.size_mib} MiB in one file",
                        f"mkdir -p out && dd if=/dev/urandom of=out/big.bin bs=1048576 count={args.size_mib} "
                        "2>/dev/null", client, backend, tmp, args.repeat, size=args.size_mib << 20)
        if "small" in args.only and args.files:  # --files 0: no small-files case
            dirs = max(1, args.files // 100)
            small = (f"mkdir -p out && cd out && for d in $(seq 1 {dirs}); do mkdir d$d; "
                     f"for f in $(seq 1 {args.files // dirs}); do echo file $d $f > d$d/f$f.txt; done; done")
            export_case(f"{args.files} small files", small, client, backend, tmp, args.repeat, files=args.files)
        if "mount" in args.only:
            mount_case(client, backend, tmp, args.size_mib, args.repeat)


if __name__ == "__main__":
    main()
