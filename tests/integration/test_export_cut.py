"""An artifact export whose stream the daemon's side cuts short is a clear dtrun error, never a traceback
and never a shorter artifact.

`dtrun run` talks to a socket standing in for the daemon (`tests/cutting_daemon.py`): everything goes to
the real daemon, except that the archive of the job's output folder is cut where each case says. The
export is read as HTTP/1.0 to the end of the connection, so no length tells a cut body from a whole
one: tar's end-of-archive marker does, and a cut exactly between two members (every header read is
valid, Python's tarfile would take it as a complete, shorter archive) must be caught as well.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import BUSYBOX_IMAGE, DtrunRunner
from tests.cutting_daemon import Cut, CuttingDaemon

WORKFLOWS = f"""workflows:
  - name: make
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands:
      - mkdir -p out/sub && head -c 300000 /dev/urandom > out/big.bin && echo hi > out/sub/small.txt
      - echo tail > out/z-last.txt
    artifacts: [out]
"""

BLOCK = 512


def members(body: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return tar.getmembers()


def big(body: bytes) -> tarfile.TarInfo:
    return next(m for m in members(body) if m.name == "out/big.bin")


def end_of_members(body: bytes) -> int:
    """Where the end-of-archive marker starts: every member whole, nothing after."""
    last = members(body)[-1]
    return last.offset_data + -(-last.size // BLOCK) * BLOCK


def before_last_member(body: bytes) -> int:
    """Exactly between two members: the last one's header never comes."""
    return members(body)[-1].offset


CUTS: dict[str, tuple[Cut, str]] = {
    "in the middle of a file": (lambda body: big(body).offset_data + 100_000, "in the middle of out/big.bin"),
    "exactly between two members": (before_last_member, "at the end of a member"),
    "after the last member, no end marker": (end_of_members, "at the end of a member"),
    "inside the end marker": (lambda body: end_of_members(body) + BLOCK, "inside tar's end-of-archive marker"),
}


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[[Cut], CuttingDaemon]]:
    made: list[CuttingDaemon] = []

    def start(cut: Cut) -> CuttingDaemon:
        made.append(CuttingDaemon(tmp_path / f"daemon{len(made)}.sock", cut))
        return made[-1]

    yield start
    for one in made:
        one.close()


def run_make(dtrun: DtrunRunner, project: Path, daemon: CuttingDaemon) -> tuple[int, str, dict[str, object]]:
    result = dtrun("run", "make", cwd=project, env={"DOCKER_HOST": daemon.url, "DTRUN_NO_LOCAL_VOLUMES": "1"})
    [record] = [json.loads(p.read_text()) for p in dtrun.store.glob("repos/*/*/jobs/*/job.json")]
    return result.code, result.output, record


def artifact_files(dtrun: DtrunRunner) -> list[str]:
    return sorted(p.name for p in dtrun.store.glob("repos/*/*/jobs/*/artifacts/*"))


def test_an_uncut_stream_through_the_stand_in_is_saved(
        make_project: Callable[..., Path], dtrun: DtrunRunner, daemon: Callable[[Cut], CuttingDaemon]) -> None:
    """The stand-in passes a whole archive on as it is: what the cases below see is only the cut."""
    relay = daemon(len)
    code, output, record = run_make(dtrun, make_project({".dtrun/workflows.yaml": WORKFLOWS}), relay)
    assert code == 0, output
    assert "saved artifact out: 3 files" in output
    assert record["state"] == "DONE" and len(relay.cuts) == 1
    assert len([name for name in artifact_files(dtrun) if name.endswith(".tar")]) == 1


@pytest.mark.parametrize("case", list(CUTS))
def test_a_cut_export_is_a_clear_error_and_stores_nothing(
        case: str, make_project: Callable[..., Path], dtrun: DtrunRunner,
        daemon: Callable[[Cut], CuttingDaemon]) -> None:
    cut, where = CUTS[case]
    cutting = daemon(cut)
    code, output, record = run_make(dtrun, make_project({".dtrun/workflows.yaml": WORKFLOWS}), cutting)
    [(whole, sent)] = cutting.cuts
    assert 0 < sent < whole
    assert code == 2, output
    assert "Traceback" not in output and "ReadError" not in output, output
    said = (f"error: job make: artifact out: the Docker daemon's archive of /workspace/out ended after "
            f"{sent} bytes, {where}")
    assert said in output, output
    assert "\n  hint: nothing of this artifact was stored" in output
    assert record["state"] == "FAILED"
    assert str(record["message"]).startswith("job make: artifact out: the Docker daemon's archive of")
    assert artifact_files(dtrun) == []  # no half tar, no temporary file, no manifest
