"""The docker client's probe (which builder a run uses) is cached in the data folder; parallel jobs of one
run reach it at the same moment on a fresh machine."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from dtrun.images import builder


def test_parallel_jobs_probe_the_docker_client_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(builder, "_probe_client", lambda path: "buildx")  # no docker CLI needed here
    racers = 8
    barrier = threading.Barrier(racers)
    failures: list[BaseException] = []
    verdicts: list[str | None] = []

    def probe() -> None:
        barrier.wait()
        try:
            verdicts.append(builder._cached_probe(sys.executable))
        except BaseException as exc:  # the failure the old shared temporary file gave
            failures.append(exc)

    threads = [threading.Thread(target=probe) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert failures == [] and verdicts == ["buildx"] * racers
    assert not [p.name for p in (tmp_path / "data" / "cache").iterdir() if p.name != "docker-clients.json"]
