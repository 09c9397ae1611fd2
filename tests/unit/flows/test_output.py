import io

import pytest

from dtrun.cli.flow_cmd import _colour, hooks


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert _colour(Tty()) and not _colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not _colour(Tty())


def test_plain_prefixed_lines(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = hooks()
    out.line("train/fit", "epoch 1")
    out.status("train/fit", "failed: exited with code 1")
    captured = capsys.readouterr()
    assert captured.out == "[train/fit] epoch 1\n"
    assert captured.err == "[train/fit] failed: exited with code 1\n"
