"""A declared artifact path that the job turned into one file is saved, passed on and downloaded as that
file (issue 12), run for real."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import DtrunRunner

WORKFLOWS = """
workflows:
  - name: make-model
    provider: bash
    commands:
      - rmdir model.bin && echo "weights v1" > model.bin
      - rmdir /opt/out/report.txt && echo "report" > /opt/out/report.txt
    artifacts:
      - model.bin
      - /opt/out/report.txt

  - name: by-tag
    provider: bash
    deps:
      - :weights
    commands:
      - test -f model.bin && cat model.bin && test -f /opt/out/report.txt && cat /opt/out/report.txt

  - name: by-workflow
    provider: bash
    depends-on:
      - make-model
    commands:
      - test -f model.bin && cat model.bin
"""


def test_a_file_artifact_is_saved_passed_on_and_downloaded_as_a_file(
        dtrun: DtrunRunner, make_project: Callable[..., Path], tmp_path: Path) -> None:
    project = make_project({".dstack/workflows.yaml": WORKFLOWS})
    made = dtrun("run", "make-model", "--tag", "weights", cwd=project)
    assert made.code == 0, made.output
    assert "saved artifact model.bin: one file" in made.stderr and "refused" not in made.stderr, made.output

    by_tag = dtrun("run", "by-tag", cwd=project)
    assert (by_tag.code, by_tag.stdout) == (0, "weights v1\nreport\n"), by_tag.output
    by_workflow = dtrun("run", "by-workflow", cwd=project)
    assert by_workflow.code == 0 and by_workflow.stdout.endswith("weights v1\n"), by_workflow.output

    out = tmp_path / "downloaded"
    downloaded = dtrun("artifacts", "weights", "-o", str(out), cwd=project)
    assert downloaded.code == 0, downloaded.output
    assert (out / "model.bin").read_text() == "weights v1\n"
    assert (out / "opt" / "out" / "report.txt").read_text() == "report\n"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "model.bin", "opt/out/report.txt"]
