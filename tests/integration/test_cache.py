"""The job cache: an unchanged job is reused (CACHED) without starting a container; changes or --no-cache run it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import BUSYBOX_IMAGE, DtrunRunner, git

WORKFLOWS = f"""
workflows:
  - name: prep
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands: ["mkdir -p out", "cat data.txt > out/data.txt", "echo prepared"]
    artifacts: [{{path: out}}]
  - name: train
    provider: docker
    image: {BUSYBOX_IMAGE}
    depends-on: [prep]
    commands: ["mkdir -p model", "cat out/data.txt > model/m.txt", "echo trained"]
    artifacts: [{{path: model}}]
"""


def created_containers(docker_client: Any, label: str, since: float) -> int:
    events = docker_client.events(since=int(since), until=int(time.time()) + 1, decode=True,
                                  filters={"type": "container", "event": "create", "label": f"dev.dtrun.store={label}"})
    return sum(1 for _ in events)


def states(dtrun: DtrunRunner, root: Path) -> list[str]:
    runs = json.loads(dtrun("status", "--json", "--last", "1", cwd=root).stdout)
    return [j["state"] for j in runs[0]["jobs"]]


def test_unchanged_jobs_are_cached(dtrun: DtrunRunner, make_project: Callable[..., Path],
                                   docker_client: Any) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS, "data.txt": "v1\n"})
    first = dtrun("run", "train", cwd=root)
    assert first.code == 0 and states(dtrun, root) == ["DONE", "DONE"], first.output

    time.sleep(1.02 - time.time() % 1)  # Docker's event filter counts whole seconds
    since = time.time()
    again = dtrun("run", "train", cwd=root)
    assert again.code == 0, again.output
    assert states(dtrun, root) == ["CACHED", "CACHED"]
    assert "CACHED prep" in again.stderr
    assert again.stdout == first.stdout  # a cache hit still shows what the reused jobs printed
    assert created_containers(docker_client, dtrun.store_label, since) == 0
    run = json.loads(dtrun("status", "--json", "--last", "1", cwd=root).stdout)[0]
    train = run["jobs"][1]
    assert train["cached_from"] and [a["path"] for a in train["artifacts"]] == ["model"]
    assert dtrun("logs", train["id"], cwd=root).stdout == "trained\n"  # the reused job's logs
    listing = dtrun("artifacts", run["name"], "-t", cwd=root)  # and its artifacts, listed and downloaded
    assert listing.code == 0 and "model" in listing.stdout, listing.output
    download = dtrun("artifacts", run["name"], "--output", str(root.parent / "dl"), cwd=root)
    assert download.code == 0 and any((root.parent / "dl" / "model").iterdir()), download.output

    (root / "data.txt").write_text("v2\n")  # changed code: both jobs run again (uncommitted changes count)
    changed = dtrun("run", "train", cwd=root)
    assert changed.code == 0 and states(dtrun, root) == ["DONE", "DONE"], changed.output
    git(root, "commit", "-qam", "v2")
    assert dtrun("run", "train", cwd=root).code == 0 and states(dtrun, root) == ["CACHED", "CACHED"]

    time.sleep(1.02 - time.time() % 1)
    since = time.time()
    forced = dtrun("run", "train", "--no-cache", cwd=root)
    assert forced.code == 0 and "prepared" in forced.stdout and states(dtrun, root) == ["DONE", "DONE"]
    assert created_containers(docker_client, dtrun.store_label, since) == 2  # the count does see containers
