"""How long dtrun takes to find an image it already built, and to rebuild after a requirements change.

    .venv/bin/python benchmarks/images.py [--repeat 30]

Builds from the local base image (`DTRUN_BASE_IMAGE`, default dtrun-local/base:bookworm) with
`python_install: system` and a small requirements file, then measures, in the same run:

- lookup: `ensure_image` for an image that exists (the path of every run whose image is unchanged),
  against one raw `images/NAME/json` call (dtrun's own client) and against `docker image inspect`;
  target < 50 ms;
- cold build: every step runs (a forced rebuild: new `DTRUN_REBUILD`, caches kept);
- rebuild after a requirements change: only the requirements layers run again.

Images built here carry a requirements comment unique to this run and are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dtrun.backends.docker import DockerBackend
from dtrun.config import load_settings
from dtrun.images.manager import ensure_image
from dtrun.images.spec import ImageSpec

REQUIREMENTS = "six==1.16.0\nidna==3.10\ncertifi==2024.8.30\n"


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=30)
    options = parser.parse_args()

    from dtrun.backends.docker.connection import connect

    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="dtrun-bench-") as tmp:
        os.environ["DTRUN_DATA_DIR"] = tmp
        os.environ.setdefault("DTRUN_BASE_IMAGE", "dtrun-local/base:bookworm")
        settings = load_settings()
        client = connect()  # dtrun's own Engine API client, the one a run uses
        host = DockerBackend(client, "unix:///var/run/docker.sock")
        quiet: Callable[[str], None] = lambda line: None  # noqa: E731
        spec = ImageSpec("bash", python_install="system", requirements=f"# {run_id}\n{REQUIREMENTS}".encode())
        built: set[str] = set()
        try:
            tag, _ = ensure_image(host, spec, settings, docker_host=None, output=quiet)
            built.add(tag)

            lookup = median_ms(lambda: ensure_image(host, spec, settings, docker_host=None, output=quiet),
                               options.repeat)
            raw_get = median_ms(lambda: client.images.get(tag), options.repeat)
            raw_cli = median_ms(lambda: subprocess.run(["docker", "image", "inspect", tag], check=True,
                                                       capture_output=True), max(5, options.repeat // 3))

            cold = timed(lambda: ensure_image(host, spec, settings, docker_host=None, output=quiet,
                                              rebuild=uuid.uuid4().hex))
            changed = ImageSpec("bash", python_install="system",
                                requirements=f"# {run_id}\n{REQUIREMENTS}packaging==24.1\n".encode())
            rebuild = timed(lambda: built.add(ensure_image(host, changed, settings, docker_host=None,
                                                           output=quiet)[0]))
        finally:
            for image in built:
                client.images.remove(image, force=True)

    print(f"lookup of a built image (ensure_image, median of {options.repeat}): {lookup:7.1f} ms  "
          f"(target < 50 ms; {'met' if lookup < 50 else 'MISSED'})")
    print(f"  raw images/NAME/json (one API call):               {raw_get:7.1f} ms  (ratio {lookup / raw_get:.2f})")
    print(f"  raw `docker image inspect`:                        {raw_cli:7.1f} ms  (ratio {lookup / raw_cli:.2f})")
    print(f"cold build (every step runs):                        {cold:7.2f} s")
    print(f"rebuild after a requirements change:                 {rebuild:7.2f} s  "
          f"({rebuild / cold:.0%} of the cold build)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
