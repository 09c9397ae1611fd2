"""What a dstack job finds in place when it starts, run for real (issue 12): its `cache:` paths, kept
between runs in labelled volumes that `dtrun volumes` lists and prunes, and the artifact folders of an
image run as it is (no prelude can make them there)."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path

from tests.conftest import DtrunRunner

CACHED = """
workflows:
  - name: fill
    provider: bash
    commands:
      - for d in ~/.cache/pip models /var/cache/dtrun-test; do cat "$d/seen" 2>/dev/null || echo "empty $d"; done
      - echo "pip of $DTRUN_RUN" > ~/.cache/pip/seen && echo "models of $DTRUN_RUN" > models/seen
      - echo "absolute of $DTRUN_RUN" > /var/cache/dtrun-test/seen
      - test "$(stat -c %a models)" != 000 && ls ~/.cache
    cache:
      - ~/.cache/pip
      - path: ./models
      - /var/cache/dtrun-test

  - name: other
    provider: bash
    commands:
      - cat models/seen 2>/dev/null || echo "empty models"
    cache:
      - models
"""

RUN_AS_IS = """
workflows:
  - name: as-is
    image: dtrun-local/busybox:latest
    entrypoint: [sh, -c, "echo made > out/made.txt && echo deep > /opt/results/deep.txt"]
    artifacts:
      - out
      - /opt/results
"""


def artifact_tars(store: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for manifest in store.glob("repos/**/jobs/*/artifacts/*.json"):
        record = json.loads(manifest.read_text())["artifact"]
        [tar] = manifest.parent.glob(f"{record['key']}-*.tar")
        out[record["path"]] = tar
    return out


def test_cache_paths_survive_between_runs_and_volumes_lists_and_prunes_them(
        dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    project = make_project({".dstack/workflows.yaml": CACHED})
    first = dtrun("run", "fill", cwd=project)
    assert first.code == 0, first.output
    assert first.stdout.splitlines()[:3] == ["empty /root/.cache/pip", "empty models", "empty /var/cache/dtrun-test"]
    second = dtrun("run", "fill", "--no-cache", cwd=project)
    assert second.code == 0, second.output
    seen = second.stdout.splitlines()[:3]
    assert [line.split(" of ")[0] for line in seen] == ["pip", "models", "absolute"], second.output
    [writer] = {line.split(" of ")[1] for line in seen}
    assert writer in first.output and writer not in second.stderr  # all three written by the first run

    # Another workflow of the same repository has its own cache, though it names the same folder.
    other = dtrun("run", "other", cwd=project)
    assert (other.code, other.stdout) == (0, "empty models\n"), other.output

    listed = dtrun("volumes", "list", "--this-store")
    assert listed.code == 0, listed.output
    caches = [line for line in listed.stdout.splitlines() if line.startswith("dtrun-cache-")]
    assert len(caches) == 4, listed.stdout
    assert any("cache (fill: /root/.cache/pip)" in line for line in caches), listed.stdout
    assert any("cache (other: /workspace/models)" in line for line in caches), listed.stdout

    pruned = dtrun("volumes", "prune", "--older-than", "0s", "--this-store")
    assert pruned.code == 0 and pruned.stdout.count("removed dtrun-cache-") == 4, pruned.output
    again = dtrun("run", "fill", "--no-cache", cwd=project)
    assert again.code == 0 and again.stdout.startswith("empty /root/.cache/pip\n"), again.output


def test_an_image_run_as_it_is_finds_its_artifact_folders(dtrun: DtrunRunner,
                                                          make_project: Callable[..., Path]) -> None:
    project = make_project({".dstack/workflows.yaml": RUN_AS_IS})
    result = dtrun("run", "as-is", cwd=project)
    assert result.code == 0, result.output
    tars = artifact_tars(dtrun.store)
    with tarfile.open(tars["out"]) as tar:
        assert tar.extractfile("made.txt").read() == b"made\n"  # type: ignore[union-attr]
    with tarfile.open(tars["/opt/results"]) as tar:
        assert tar.extractfile("deep.txt").read() == b"deep\n"  # type: ignore[union-attr]
