"""The command line as a user types it: usage mistakes get click's usage message, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import DtrunRunner


@pytest.mark.parametrize(("args", "needle"), [
    (["nosuch"], "No such command 'nosuch'"),
    (["run"], "missing the workflow to run"),
    (["config", "get"], "Missing argument"),
    (["status", "--last", "many"], "Invalid value"),
])
def test_usage_errors_are_short_and_exit_2(dtrun: DtrunRunner, tmp_path: Path, args: list[str],
                                           needle: str) -> None:
    result = dtrun(*args, cwd=tmp_path)
    assert result.code == 2, result.output
    assert needle in result.stderr
    assert "Traceback" not in result.output


def test_help_lists_the_commands(dtrun: DtrunRunner, tmp_path: Path) -> None:
    result = dtrun("--help", cwd=tmp_path)
    assert result.code == 0
    for command in ("run", "status", "logs", "stop", "resume", "secrets", "flow",
                    "action", "images", "config"):
        assert f" {command} " in result.stdout or f" {command}\n" in result.stdout, command
