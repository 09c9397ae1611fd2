"""Code shipped by content through the engine (issue 19): each run's changes reach the job, jobs get
private views of the tree, the code volume is listed and pruned by `dtrun volumes`."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import DtrunRunner

WORKFLOWS = """
workflows:
  - name: show
    provider: bash
    commands:
      - find . -path ./.git -prune -o -type f -print | sort
      - cat a.txt moved/b.txt 2>/dev/null || true
  - name: left
    provider: bash
    commands:
      - echo left > left.txt
      - sleep 4
      - test -e right.txt && echo left-sees-right || echo left-alone
      - cat shared.txt
  - name: right
    provider: bash
    commands:
      - echo right > right.txt
      - echo changed-by-right > shared.txt
      - sleep 4
      - test -e left.txt && echo right-sees-left || echo right-alone
  - name: both
    provider: bash
    depends-on: [left, right]
    commands:
      - ls
"""


def code_volumes(docker_client: Any, dtrun: DtrunRunner) -> list[str]:
    found = docker_client.volumes.list(filters={"label": ["dev.dtrun.code", f"dev.dtrun.store={dtrun.store_label}"]})
    return sorted(v.name for v in found)


def commit_all(root: Path) -> None:
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "change"], cwd=root, check=True)


def test_changed_added_deleted_and_renamed_files_reach_the_next_run(
        dtrun: DtrunRunner, make_project: Callable[..., Path], docker_client: Any) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS, "a.txt": "one\n", "b.txt": "bee\n", "gone.txt": "x\n",
                         "pkg/x.txt": "x\n", "pkg/sub/y.txt": "y\n"})
    first = dtrun("run", "show", cwd=root)
    assert first.code == 0, first.output
    assert "./gone.txt" in first.stdout and "./b.txt" in first.stdout and "one\n" in first.stdout
    assert "./pkg/sub/y.txt" in first.stdout
    [volume] = code_volumes(docker_client, dtrun)

    (root / "a.txt").write_text("two\n")  # changed
    (root / "new.txt").write_text("new\n")  # added
    (root / "gone.txt").unlink()  # deleted
    (root / "moved").mkdir()
    (root / "b.txt").rename(root / "moved" / "b.txt")  # renamed: same bytes, nothing to send for it
    commit_all(root)
    second = dtrun("run", "show", cwd=root)
    assert second.code == 0, second.output
    listed = second.stdout.split()
    assert {"./a.txt", "./new.txt", "./moved/b.txt"} <= set(listed), second.output
    assert "./gone.txt" not in listed and "./b.txt" not in listed
    assert "two\nbee\n" in second.stdout
    assert "sent 2 changed files of code" in second.stderr, second.stderr  # a.txt and new.txt only
    assert code_volumes(docker_client, dtrun) == [volume]  # one volume per repository

    again = dtrun("run", "show", "--no-cache", cwd=root)  # nothing changed: nothing sent
    assert again.code == 0 and again.stdout == second.stdout and "sent" not in again.stderr, again.output

    shutil.rmtree(root / "pkg")  # a deleted folder, in a third tree stacked on the second
    (root / "a.txt").write_text("three\n")
    commit_all(root)
    third = dtrun("run", "show", cwd=root)
    assert third.code == 0 and "three\nbee\n" in third.stdout, third.output
    assert not [f for f in third.stdout.split() if f.startswith("./pkg")], third.output
    assert set(third.stdout.split()) >= {"./a.txt", "./new.txt", "./moved/b.txt"}, third.output


def test_a_job_never_sees_what_a_concurrent_job_of_the_repository_writes(
        dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS, "shared.txt": "original\n"})
    result = dtrun("run", "both", cwd=root, env={"DTRUN_MAX_PARALLEL": "2"})
    assert result.code == 0, result.output
    assert "left-alone" in result.stdout and "right-alone" in result.stdout, result.output
    assert "left-sees-right" not in result.stdout and "right-sees-left" not in result.stdout
    assert "original" in result.stdout and result.stdout.count("changed-by-right") == 0
    assert "left.txt" not in result.stdout.split() and "right.txt" not in result.stdout.split()  # `both`'s view
    assert (root / "shared.txt").read_text() == "original\n"  # and never the client's files


def test_the_code_volume_is_listed_and_pruned_and_comes_back(
        dtrun: DtrunRunner, make_project: Callable[..., Path], docker_client: Any) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS, "a.txt": "one\n"})
    assert dtrun("run", "show", cwd=root).code == 0
    [volume] = code_volumes(docker_client, dtrun)
    listing = dtrun("volumes", "list", "--this-store", cwd=root)
    assert listing.code == 0 and volume in listing.stdout and "code (local/" in listing.stdout, listing.output

    pruned = dtrun("volumes", "prune", "--this-store", "--older-than", "0s", cwd=root)
    assert pruned.code == 0 and f"removed {volume}" in pruned.stdout, pruned.output
    assert code_volumes(docker_client, dtrun) == []
    assert docker_client.containers.list(all=True, filters={"name": f"{volume}-anchor"}) == []

    again = dtrun("run", "show", "--no-cache", cwd=root)  # the whole tree is sent again
    assert again.code == 0 and "one" in again.stdout and "sent 2 changed files" in again.stderr, again.output
    assert code_volumes(docker_client, dtrun) == [volume]


def test_large_untracked_files_are_pointed_out_once(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS, "a.txt": "one\n"})
    (root / "data").mkdir()
    with (root / "data" / "big.bin").open("wb") as handle:  # sparse: cheap to write, 110 MB to ship
        handle.truncate(110 * 2**20)
    first = dtrun("run", "show", cwd=root)
    assert first.code == 0 and "data/big.bin" in first.stderr and ".dtrunignore" in first.stderr, first.output
    second = dtrun("run", "show", "--no-cache", cwd=root)
    assert second.code == 0 and ".dtrunignore" not in second.stderr, second.output
    (root / ".dtrunignore").write_text("data/\n")
    third = dtrun("run", "show", cwd=root)
    assert third.code == 0 and "./data/big.bin" not in third.stdout.split(), third.output
    assert os.path.getsize(root / "data" / "big.bin") == 110 * 2**20


def test_views_are_copies_where_overlay_volumes_do_not_mount(
        dtrun: DtrunRunner, make_project: Callable[..., Path], docker_client: Any, tmp_path: Path) -> None:
    import json

    data = tmp_path / "data"  # this daemon's probe answer, as a daemon without overlay support gives it
    probe = data / "cache" / "hosts" / f"{docker_client.info()['ID'].replace(':', '_')}.overlay.json"
    probe.parent.mkdir(parents=True)
    probe.write_text(json.dumps({"overlay": False}))
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS, "shared.txt": "original\n", "a.txt": "one\n"})
    result = dtrun("run", "both", cwd=root, env={"DTRUN_DATA_DIR": str(data)})
    assert result.code == 0, result.output
    assert "left-alone" in result.stdout and "right-alone" in result.stdout and "original" in result.stdout
    assert json.loads(probe.read_text()) == {"overlay": False}  # asked once per daemon, not again
    leftover = [v.name for v in docker_client.volumes.list(filters={"label": f"dev.dtrun.store={dtrun.store_label}"})
                if v.name.startswith("dtrun-ws-")]
    assert leftover == []
