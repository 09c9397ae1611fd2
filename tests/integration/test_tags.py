"""Tags and deps across runs and repositories sharing one store, as a user types the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import DtrunRunner, git
from tests.integration.test_artifacts import download, run_name, wf, workflows

TRAIN_ON_TAG = wf("train", ["cat output/hello.txt", "mkdir -p model", "echo m > model/m"],
                  "deps: [':data']\nartifacts: [model]")


def test_download_then_train_over_a_tag(make_project: Any, dtrun: DtrunRunner) -> None:
    project = make_project(workflows(download(), TRAIN_ON_TAG))
    missing = dtrun("run", "train", cwd=project)
    assert missing.code != 0 and "no tag 'data'" in missing.stderr and "Traceback" not in missing.output

    tagged = dtrun("run", "download", "-t", "data", cwd=project)
    assert tagged.code == 0, tagged.output
    assert "tagged run" in tagged.stderr
    again = dtrun("run", "download", "-t", "data", cwd=project)
    assert again.code != 0 and "tag 'data' already exists" in again.stderr

    listing = dtrun("tags", cwd=project)
    assert listing.code == 0
    header, row = listing.stdout.splitlines()[:2]
    assert header.split() == ["TAG", "RUN", "WORKFLOW", "ARTIFACTS", "CREATED"]
    assert row.split()[:4] == ["data", run_name(tagged), "download", "output"]

    trained = dtrun("run", "train", cwd=project)
    assert trained.code == 0, trained.output
    assert trained.stdout.strip().startswith("hello")

    assert dtrun("tags", "add", "model", run_name(trained), cwd=project).code == 0
    assert "model" in dtrun("tags", cwd=project).stdout
    assert dtrun("artifacts", "model", cwd=project).stdout.count("model/m") == 1

    deleted = dtrun("tags", "delete", "data", cwd=project)
    assert deleted.code == 0
    assert dtrun("run", "train", cwd=project).code != 0
    assert dtrun("tags", "delete", "data", cwd=project).code != 0


def test_tags_add_from_local_folders_and_artifacts_upload(make_project: Any, dtrun: DtrunRunner,
                                                          tmp_path: Path) -> None:
    project = make_project(workflows(wf("train", ["cat data/raw/x.csv", "cat output/hello.txt"],
                                        "deps: [':raw', ':out']")), commit=True)
    (project / "data" / "raw").mkdir(parents=True)
    (project / "data" / "raw" / "x.csv").write_text("1,2\n")
    added = dtrun("tags", "add", "raw", "-a", "data/raw", cwd=project)
    assert added.code == 0, added.output
    outside = tmp_path / "elsewhere" / "output"
    outside.mkdir(parents=True)
    (outside / "hello.txt").write_text("hello\n")
    uploaded = dtrun("artifacts", "upload", "out", str(outside), cwd=project)
    assert uploaded.code == 0, uploaded.output
    rows = {line.split()[0]: line.split() for line in dtrun("tags", cwd=project).stdout.splitlines()[1:]}
    assert rows["raw"][1:4] == ["-", "(upload)", "data/raw"]
    assert rows["out"][3] == "output"
    result = dtrun("run", "train", cwd=project)
    assert result.code == 0, result.output
    assert result.stdout.split() == ["1,2", "hello"]


def test_tag_commands_reject_bad_input_clearly(make_project: Any, dtrun: DtrunRunner) -> None:
    project = make_project(workflows(wf("fail", ["exit 3"])))
    failed = dtrun("run", "fail", "-t", "never", cwd=project)
    assert failed.code == 3
    assert "never" not in dtrun("tags", cwd=project).stdout
    cases = [
        (["tags", "add", "x", run_name(failed)], "did not succeed"),
        (["tags", "add", "x", "no-such-run-1"], "no run named 'no-such-run-1'"),
        (["tags", "add", "bad/name", run_name(failed)], "not a valid tag name"),
        (["tags", "add", "x", "-a", "missing-folder"], "does not exist"),
        (["tags", "add", "x"], "name one run to tag"),
        (["artifacts", "nothing-here"], "no run, job or tag named 'nothing-here'"),
        (["artifacts", "upload", "x"], "usage: dtrun artifacts upload TAG PATH"),
    ]
    for args, message in cases:
        result = dtrun(*args, cwd=project)
        assert result.code != 0, args
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output


def test_a_tag_and_a_workflow_of_another_repository_in_the_same_store(
        make_project: Any, dtrun: DtrunRunner) -> None:
    alice = make_project(workflows(download()), name="alice-data")
    git(alice, "remote", "add", "origin", "git@github.com:alice/data.git")
    bob = make_project(workflows(
        wf("train", ["cat output/hello.txt"], "deps: [':alice/data/mnist']"),
        wf("latest", ["readlink output/link"], "deps: ['alice/data/download']")), name="bob-train")
    git(bob, "remote", "add", "origin", "https://github.com/bob/train")

    before = dtrun("run", "latest", cwd=bob)
    assert before.code != 0 and "no repository 'alice/data'" in before.stderr

    assert dtrun("run", "download", "-t", "mnist", cwd=alice).code == 0
    trained = dtrun("run", "train", cwd=bob)
    assert trained.code == 0, trained.output
    assert trained.stdout.strip() == "hello"
    latest = dtrun("run", "latest", cwd=bob)
    assert latest.code == 0, latest.output
    assert latest.stdout.strip() == "hello.txt"

    repos = sorted(str(p.relative_to(dtrun.store / "repos")) for p in (dtrun.store / "repos").glob("*/*/*"))
    assert repos == ["github.com/alice/data", "github.com/bob/train"]
    assert "mnist" not in dtrun("tags", cwd=bob).output
    assert "mnist" in dtrun("tags", "--repo", "alice/data", cwd=bob).stdout
