"""`dtrun run` on a real terminal (a tmux pseudo-terminal): an image build is a compact live view that
collapses into one summary line, not BuildKit's step log; `-v` shows the whole log there too.

tmux comes from `scripts/ensure-tmux` (called by `make test`)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SESSION, DtrunRunner

WORKFLOWS = """
workflows:
  - name: hello
    provider: bash
    commands:
      - echo "hello from the job"
"""
SUMMARY = re.compile(r"^\s*built (dtrun/bash:\w+) in \d+\.\d s \((\d+) steps?, (\d+) cached\)$", re.MULTILINE)


@pytest.fixture
def tmux() -> Iterator[Callable[..., str]]:
    """Runs a command in a detached 160x50 tmux session; returns the screen once it printed `EXIT=`."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is missing: run scripts/ensure-tmux (make test does)")
    sessions: list[str] = []

    def run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> str:
        name = f"dtrun-{SESSION}-{uuid.uuid4().hex[:6]}"
        sessions.append(name)
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command = f"cd {shlex.quote(str(cwd))} && env {exports} {shlex.join(argv)}; echo EXIT=$?; sleep 600"
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "160", "-y", "50", command], check=True)
        deadline = time.time() + timeout
        screen = ""
        while time.time() < deadline:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", name, "-S", "-500"], text=True,
                                    capture_output=True, check=True).stdout
            if re.search(r"^EXIT=\d+", screen, re.MULTILINE):
                return screen
            time.sleep(0.5)
        raise AssertionError(f"dtrun did not finish in {timeout} s; the screen:\n{screen}")

    yield run
    for name in sessions:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def _terminal_env(dtrun: DtrunRunner) -> dict[str, str]:
    env = {k: v for k, v in dtrun.env.items() if k in ("DTRUN_STORE", "DTRUN_DATA_DIR", "XDG_CONFIG_HOME",
                                                       "DTRUN_BASE_IMAGE", "DOCKER_HOST", "PATH", "HOME",
                                                       "DTRUN_CA_BUNDLE", "PIP_INDEX_URL", "PIP_CERT")}
    return {**env, "TERM": "xterm-256color"}  # a terminal, and no NO_COLOR


def _built(screen: str) -> re.Match[str]:
    found = SUMMARY.search(screen)
    assert found, f"no build summary on the screen:\n{screen}"
    return found


def test_a_build_on_a_terminal_collapses_to_one_line(make_project: Callable[..., Path], dtrun: DtrunRunner,
                                                     tmux: Callable[..., str], docker_client: Any) -> None:
    unique = uuid.uuid4().hex  # requirements unique to this test: its image is built now, not found
    project = make_project({".dtrun/workflows.yaml": WORKFLOWS, "requirements.txt": f"# {unique}\n"})
    env = _terminal_env(dtrun)
    screen = tmux([sys.executable, "-m", "dtrun", "run", "hello"], env, project)
    tags = set()
    try:
        assert "EXIT=0" in screen, screen
        built = _built(screen)
        tags.add(built.group(1))
        assert int(built.group(2)) >= 2, screen
        assert "hello from the job" in screen
        assert not re.search(r"^\s*(\| )?#\d+ ", screen, re.MULTILINE), f"BuildKit's log is on the screen:\n{screen}"
        assert "sha256:" not in screen and "  | " not in screen, screen

        # -v: the whole log as it comes, then the same summary
        (project / "requirements.txt").write_text(f"# {unique} verbose\n")
        screen = tmux([sys.executable, "-m", "dtrun", "run", "-v", "hello"], env, project)
        assert "EXIT=0" in screen, screen
        tags.add(_built(screen).group(1))
        assert re.search(r"^\s*\| #\d+ ", screen, re.MULTILINE), screen
    finally:
        for tag in tags:
            docker_client.images.remove(tag, force=True)


def test_without_a_terminal_builds_are_plain_lines(make_project: Callable[..., Path], dtrun: DtrunRunner,
                                                   docker_client: Any) -> None:
    unique = uuid.uuid4().hex
    project = make_project({".dtrun/workflows.yaml": WORKFLOWS, "requirements.txt": f"# {unique}\n"})
    result = dtrun("run", "hello", cwd=project)  # pipes, NO_COLOR
    assert result.code == 0, result.output
    built = _built(result.stderr)
    docker_client.images.remove(built.group(1), force=True)
    assert re.search(r"^  \| #\d+ ", result.stderr, re.MULTILINE)  # the log, prefixed
    assert "\x1b" not in result.stderr and "\x1b" not in result.stdout  # no control sequences


def test_a_failed_build_on_a_terminal_shows_its_whole_log(make_project: Callable[..., Path], dtrun: DtrunRunner,
                                                          tmux: Callable[..., str]) -> None:
    unique = uuid.uuid4().hex
    project = make_project({".dtrun/workflows.yaml": WORKFLOWS,
                            "requirements.txt": f"# {unique}\n!!! not a requirement\n"})  # pip refuses it at once
    screen = tmux([sys.executable, "-m", "dtrun", "run", "hello"], _terminal_env(dtrun), project)
    assert re.search(r"^EXIT=[1-9]", screen, re.MULTILINE), screen
    assert not SUMMARY.search(screen), screen
    assert re.search(r"^\s*\| #\d+ ", screen, re.MULTILINE), f"no build log on the screen:\n{screen}"
    assert "not a requirement" in screen
    assert "Traceback" not in screen
