import io

import pytest

from dtrun.cli.render import Renderer, _colour
from dtrun.engine.events import OUTPUT, RESULT, STATUS, Event


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
    out = Renderer()
    out(Event(OUTPUT, job="train", step="fit", data=b"epoch 1\n"))
    out(Event(STATUS, "failed: exited with code 1", job="train", step="fit"))
    out(Event(RESULT, "failed (step fit failed)", job="train", step="", state="FAILED"))
    out(Event(STATUS, "flow f: run r succeeded", step=""))
    captured = capsys.readouterr()
    assert captured.out == "[train/fit] epoch 1\n"
    assert captured.err == ("[train/fit] failed: exited with code 1\n[train] failed (step fit failed)\n"
                            "flow f: run r succeeded\n")
