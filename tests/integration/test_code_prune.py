"""A code volume stays bounded (issue 19, `dtrun.code.retention`): runs that change files prune it to the
`code_trees` most recent trees, never removing what a running job's view or a run in flight needs, and
the next run still sends only what changed."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docker.types import Mount

from tests.conftest import BUSYBOX_IMAGE, DtrunRunner
from tests.integration.test_code_volume import LABELS, _manifest, code_volume, ours  # noqa: F401 - a fixture

WORKFLOWS = """
workflows:
  - name: show
    provider: bash
    commands:
      - cat a.txt
  - name: slow
    provider: bash
    commands:
      - sleep 6
      - cat a.txt
"""


def volume_of(docker_client: Any, dtrun: DtrunRunner) -> str:
    [found] = docker_client.volumes.list(filters={"label": ["dev.dtrun.code", f"dev.dtrun.store={dtrun.store_label}"]})
    return str(found.name)


def settled(docker_client: Any, volume: str, timeout: float = 60) -> None:
    """Once no prune helper of `volume` is left (they remove themselves when done)."""
    deadline = time.monotonic() + timeout
    while docker_client.containers.list(all=True, filters={"label": f"dev.dtrun.code.pruner={volume}"}):
        assert time.monotonic() < deadline, "a prune helper never finished"
        time.sleep(0.2)


def contents(docker_client: Any, volume: str, image: str = BUSYBOX_IMAGE) -> tuple[dict[str, list[str]], list[str]]:
    """The volume's trees (id -> layers) and its layer folders (read by a container of `image`)."""
    script = ("cd /code && for m in trees/*.layers; do [ -e \"$m\" ] && echo \"$m $(cat \"$m\")\"; done; "
              "ls layers | sed 's/^/layer /'")
    out = docker_client.containers.run(
        image, ["sh", "-c", script], remove=True, labels=LABELS,
        mounts=[Mount(target="/code", source=volume, type="volume", read_only=True)])
    trees: dict[str, list[str]] = {}
    layers: list[str] = []
    for line in out.decode().splitlines():
        kind, rest = line.split(" ", 1)
        if kind == "layer":
            layers.append(rest)
        else:
            trees[kind.removeprefix("trees/").removesuffix(".layers")] = rest.split(":")
    return trees, layers


def test_changed_runs_keep_the_volume_to_its_bound_and_send_only_what_changed(
        dtrun: DtrunRunner, make_project: Callable[..., Path], docker_client: Any) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS, "a.txt": "v0\n", "b.txt": "same\n"})
    env = {"DTRUN_CODE_TREES": "2"}  # two trees kept; a prune every second changed run (retention.prune_every)
    first = dtrun("run", "show", cwd=root, env=env)
    assert first.code == 0 and first.stdout == "v0\n", first.output
    volume = volume_of(docker_client, dtrun)
    for version in range(1, 7):
        (root / "a.txt").write_text(f"v{version}\n")
        result = dtrun("run", "show", cwd=root, env=env)
        assert result.code == 0 and result.stdout == f"v{version}\n", result.output
        assert "sent 1 changed file of code (3 B)" in result.stderr, result.stderr  # also right after a prune
        settled(docker_client, volume)
        trees, layers = contents(docker_client, volume)
        assert len(trees) <= 2 * 2, trees  # K after a prune, K more before the next: never 7
        named = {layer for chain in trees.values() for layer in chain}
        assert set(layers) == named, (trees, layers)  # every layer of a dropped tree went with it
    # nothing changed: nothing sent, no prune; the job's view mounts the kept layers of the latest tree
    again = dtrun("run", "show", "--no-cache", cwd=root, env=env)
    assert again.code == 0 and again.stdout == "v6\n" and "sent" not in again.stderr, again.output
    off = dtrun("run", "show", "--no-cache", cwd=root, env={"DTRUN_CODE_TREES": "many"})
    assert off.code != 0 and "code_trees must be a whole number" in off.output and "Traceback" not in off.output


def test_a_job_running_during_a_prune_still_sees_its_files(
        dtrun: DtrunRunner, make_project: Callable[..., Path], docker_client: Any) -> None:
    from dtrun.backends.docker.codevolumes import DockerCodeVolumes

    root = make_project({".dtrun/workflows.yaml": WORKFLOWS, "a.txt": "first\n"})
    assert dtrun("run", "show", cwd=root).code == 0
    volume = volume_of(docker_client, dtrun)
    slow = subprocess.Popen([sys.executable, "-m", "dtrun", "run", "slow"], cwd=root, env=dtrun.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not docker_client.containers.list(filters={"label": f"dev.dtrun.store={dtrun.store_label}",
                                                         "status": "running"}):
            assert time.monotonic() < deadline and slow.poll() is None, "the slow job never started"
            time.sleep(0.2)
        (root / "a.txt").write_text("second\n")  # a newer tree: the slow job's is no longer the latest
        assert dtrun("run", "show", cwd=root).stdout == "second\n"
        DockerCodeVolumes(ours(), BUSYBOX_IMAGE).prune_code(volume, [], newest=0)  # keep nothing it may drop
        out, err = slow.communicate(timeout=120)
    finally:
        if slow.poll() is None:
            slow.kill()
    assert slow.returncode == 0 and out == "first\n", out + err
    trees, _ = contents(docker_client, volume)
    assert len(trees) == 2  # the slow job's tree (its view and its run's hold kept it) and the latest


def test_a_held_tree_is_kept_until_its_run_releases_it(docker_client: Any, code_volume: str,  # noqa: F811
                                                       tmp_path: Path) -> None:
    from dtrun.backends.docker.codeprune import holds_of
    from dtrun.backends.docker.codevolumes import DockerCodeVolumes

    volumes = DockerCodeVolumes(ours(), BUSYBOX_IMAGE)
    root = tmp_path / "p"
    root.mkdir()
    (root / "a.txt").write_text("old\n")
    held = volumes.put_code(code_volume, root, _manifest(root), LABELS)  # a run in flight, between its jobs
    (root / "a.txt").write_text("new\n")
    latest = volumes.put_code(code_volume, root, _manifest(root), LABELS)
    volumes.release_code(latest)
    assert holds_of(ours(), code_volume) == [held.tree_id]
    volumes.prune_code(code_volume, [], newest=0)
    assert set(contents(docker_client, code_volume)[0]) == {held.tree_id, latest.tree_id}
    view = volumes.code_view(held, f"{code_volume}-held", LABELS)
    try:
        out = docker_client.containers.run(BUSYBOX_IMAGE, ["cat", "/workspace/a.txt"], remove=True, labels=LABELS,
                                           mounts=[Mount(target="/workspace", source=view, type="volume")])
        assert out == b"old\n"
    finally:
        volumes.remove_code_view(view)
    volumes.release_code(held)
    assert holds_of(ours(), code_volume) == []
    volumes.prune_code(code_volume, [], newest=0)
    assert set(contents(docker_client, code_volume)[0]) == {latest.tree_id}  # HEAD's alone


def test_the_pruning_client_keeps_its_record_of_the_tree_it_kept(docker_client: Any, code_volume: str,  # noqa: F811
                                                                 tmp_path: Path) -> None:
    from dtrun.backends.docker import coderecord
    from dtrun.backends.docker.codevolumes import DockerCodeVolumes, ensure_code_volume
    from dtrun.code.volume import split_layers

    volumes = DockerCodeVolumes(ours(), BUSYBOX_IMAGE)
    root = tmp_path / "p"
    root.mkdir()
    (root / "a.txt").write_text("one\n")
    (root / "b.txt").write_text("same\n")
    first = volumes.put_code(code_volume, root, _manifest(root), LABELS)
    volumes.release_code(first)
    before = ensure_code_volume(ours(), code_volume, LABELS).id
    volumes.prune_code(code_volume, [first.build], newest=0)
    after = ensure_code_volume(ours(), code_volume, LABELS).id
    assert after != before  # every other client's records lapse with the old anchor
    assert coderecord.recorded(after, first.tree_id) == first.build  # this one's are carried over
    assert coderecord.landed(after) == 0  # the count towards the next prune starts again
    (root / "a.txt").write_text("two\n")
    second = volumes.put_code(code_volume, root, _manifest(root), LABELS)  # stacked on the carried base
    volumes.release_code(second)
    assert second.sent is not None and second.sent.bytes_to_send == len("two\n")
    assert split_layers(second.build)[1:] == split_layers(first.build) and second.landed == 1


def test_a_remote_daemon_is_pruned_through_the_api(docker_client: Any, make_project: Callable[..., Path],
                                                  dtrun: DtrunRunner, tmp_path: Path) -> None:
    """ssh:// to a daemon that shares no file system with the client: the same bound, the same files."""
    from tests.conftest import BASE_IMAGE, SESSION
    from tests.dind_daemon import remote_daemon

    (tmp_path / "remote").mkdir()
    with remote_daemon(docker_client, BASE_IMAGE, name=f"dtrun-test-dind-prune-{SESSION}",
                       labels={"dtrun-test-session": SESSION}, workdir=tmp_path / "remote") as remote:
        env = {"DOCKER_HOST": remote.ssh, **remote.ssh_env, "DTRUN_CODE_TREES": "1"}  # a prune every changed run
        root = make_project({".dtrun/workflows.yaml": WORKFLOWS, "a.txt": "v0\n"})
        for version in range(4):
            (root / "a.txt").write_text(f"v{version}\n")
            result = dtrun("run", "show", cwd=root, env=env)
            assert result.code == 0 and result.stdout == f"v{version}\n", result.output
            [volume] = remote.client.volumes.list(filters={"label": ["dev.dtrun.code",
                                                                     f"dev.dtrun.store={dtrun.store_label}"]})
            settled(remote.client, volume.name)
            trees, layers = contents(remote.client, volume.name, BASE_IMAGE)
            assert len(trees) <= 2 and set(layers) == {layer for chain in trees.values() for layer in chain}, trees
        assert not remote.client.volumes.list(filters={"label": "dev.dtrun.code.hold"})  # released at the end
