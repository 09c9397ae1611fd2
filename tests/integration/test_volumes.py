"""`dtrun volumes`: the dep caches on a host can be listed and pruned, and come back when needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import DtrunRunner

WORKFLOWS = """
workflows:
  - name: write
    provider: bash
    commands:
      - mkdir -p out && echo cached > out/value.txt
    artifacts: [out]
  - name: read
    provider: bash
    depends-on: [write]
    commands:
      - cat out/value.txt
"""


def own_cache_volumes(docker_client: Any, dtrun: DtrunRunner) -> list[str]:
    labels = ["dev.dtrun.artifact", f"dev.dtrun.store={dtrun.store_label}"]
    found = docker_client.volumes.list(filters={"label": labels})
    return sorted(v.name for v in found)


def test_prune_removes_only_unused_caches_and_they_come_back(
        dtrun: DtrunRunner, make_project: Callable[..., Path], docker_client: Any) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS})
    assert dtrun("run", "read", cwd=root).code == 0
    [volume] = own_cache_volumes(docker_client, dtrun)

    listing = dtrun("volumes", "list", "--this-store", cwd=root)
    assert listing.code == 0 and volume in listing.stdout and "dep artifact" in listing.stdout

    young = dtrun("volumes", "prune", "--this-store", cwd=root)  # default: older than 7 days
    assert young.code == 0 and "removed 0 volumes" in young.stdout
    dry = dtrun("volumes", "prune", "--this-store", "--older-than", "0s", "--dry-run", cwd=root)
    assert f"would remove {volume}" in dry.stdout and own_cache_volumes(docker_client, dtrun) == [volume]

    holder = docker_client.containers.create("dtrun-local/busybox:latest", ["true"], volumes=[f"{volume}:/x"],
                                             labels={"dev.dtrun.store": dtrun.store_label})
    try:
        busy = dtrun("volumes", "prune", "--this-store", "--older-than", "0s", cwd=root)
        assert busy.code == 0 and f"kept {volume}" in busy.stdout and "kept 1 in use" in busy.stdout
    finally:
        holder.remove(force=True)

    pruned = dtrun("volumes", "prune", "--this-store", "--older-than", "0s", cwd=root)
    assert pruned.code == 0 and f"removed {volume}" in pruned.stdout
    assert own_cache_volumes(docker_client, dtrun) == []

    again = dtrun("run", "read", "--no-cache", cwd=root)  # the next job materialises it again
    assert again.code == 0 and again.stdout == "cached\n", again.output
    assert own_cache_volumes(docker_client, dtrun) == [volume]


def test_bad_age_is_a_clear_error(dtrun: DtrunRunner, tmp_path: Path) -> None:
    result = dtrun("volumes", "prune", "--older-than", "soon", cwd=tmp_path)
    assert result.code == 2 and "'soon' is not a duration" in result.stderr and "Traceback" not in result.output
