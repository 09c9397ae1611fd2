"""One child process measured as a user would feel it: wall time, CPU time and peak memory.

Peak memory is the child's own maximum resident set (and that of the children it waited for), taken
from `wait4`, the figure `/usr/bin/time -v` prints as "Maximum resident set size".
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    wall: float
    cpu: float
    peak_mb: float


def measure(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> Sample:
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            out.seek(0)
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{out.read().decode(errors='replace')}")
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def shell(script: str, *, env: dict[str, str] | None = None, cwd: Path | None = None) -> Sample:
    return measure(["sh", "-c", script], env=env, cwd=cwd)


@dataclass(frozen=True)
class Summary:
    wall: float
    cpu: float
    peak_mb: float
    n: int

    @classmethod
    def of(cls, samples: list[Sample]) -> Summary:
        return cls(statistics.median(s.wall for s in samples), statistics.median(s.cpu for s in samples),
                   max(s.peak_mb for s in samples), len(samples))


def machine() -> str:
    """What the figures were measured on (they mean little without it)."""
    import platform

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB memory"
    except (OSError, ValueError, IndexError):
        pass
    docker = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; Docker daemon {docker}; load average {load} "
            "(the machine is shared with other work: figures are medians)")
