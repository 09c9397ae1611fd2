"""Artifact speed against raw Docker: export of 1 GiB in one file and of 10,000 small files (vs
`docker cp` of the same folder), and mounting an already-materialised 1 GiB dep.

    .venv/bin/python benchmarks/artifacts.py [--size-mib 1024] [--files 10000] [--repeat 3]

dtrun's export is measured both ways: through the Docker API (`get_archive`, what a remote daemon
gets) and reading the volume directly (the local fast path). Ratios > 1 mean dtrun is faster.
Everything it creates is labelled `dev.dtrun.bench=<id>` and removed at the end.
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


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """The median wall time of `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextmanager
def filled_container(client: Any, script: str) -> Iterator[Any]:
    """A stopped container whose volume at /workspace holds what `script` wrote into /workspace/out."""
    volume = client.volumes.create(name=f"dtrun-bench-{RUN_ID}-{uuid.uuid4().hex[:6]}", labels=LABELS)
    from docker.types import Mount

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
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    subprocess.run(["docker", "cp", f"{container.id}:/workspace/out", str(dest)], check=True,
                   stdout=subprocess.DEVNULL)


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
    with filled_container(client, script) as container:
        assert backend.local_path(container, "/workspace/out") is not None, "the fast path is not available"
        cp = timed(lambda: docker_cp(container, tmp / "cp"), repeat)
        api = timed(lambda: dtrun_export(backend, store, container, local=False), repeat)
        fast = timed(lambda: dtrun_export(backend, store, container, local=True), repeat)
    shutil.rmtree(tmp / "cp", ignore_errors=True)
    shutil.rmtree(tmp / "store", ignore_errors=True)
    def rate(seconds: float) -> str:
        return f"{size / (1 << 20) / seconds:7.0f} MiB/s" if size else f"{files / seconds:7.0f} files/s"

    print(f"\nexport, {name}:")
    print(f"  docker cp                        {cp:6.2f} s  {rate(cp)}")
    print(f"  dtrun, Docker API (remote-safe)  {api:6.2f} s  {rate(api)}   ratio vs docker cp {cp / api:5.2f}x")
    print(f"  dtrun, volume read directly      {fast:6.2f} s  {rate(fast)}   ratio vs docker cp {cp / fast:5.2f}x")


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
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import docker

    client = docker.from_env(timeout=600)
    backend = DockerBackend(client, "unix:///var/run/docker.sock")
    with tempfile.TemporaryDirectory(prefix="dtrun-bench-") as folder:
        tmp = Path(folder)
        export_case(f"{args.size_mib} MiB in one file",
                    f"mkdir -p out && dd if=/dev/urandom of=out/big.bin bs=1048576 count={args.size_mib} 2>/dev/null",
                    client, backend, tmp, args.repeat, size=args.size_mib << 20)
        dirs = max(1, args.files // 100)
        small = (f"mkdir -p out && cd out && for d in $(seq 1 {dirs}); do mkdir d$d; "
                 f"for f in $(seq 1 {args.files // dirs}); do echo file $d $f > d$d/f$f.txt; done; done")
        export_case(f"{args.files} small files", small, client, backend, tmp, args.repeat, files=args.files)
        mount_case(client, backend, tmp, args.size_mib, args.repeat)


if __name__ == "__main__":
    main()
