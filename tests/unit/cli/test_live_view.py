"""The pieces of a terminal that informs: a build's steps and summary from its log, transfers' progress
events, the live view's lines, and the plain rendering without a terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from dtrun.cli.live_view import LiveView
from dtrun.cli.render import Renderer
from dtrun.engine.build_watch import BuildWatch
from dtrun.engine.events import BUILD_DONE, BUILD_STEP, PROGRESS, Event
from dtrun.engine.progress import MeteredReader, MeteredWriter, Progress, size_of

BUILDKIT = """\
#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 1.2kB done
#1 DONE 0.0s
#4 [stage-0 1/3] FROM docker.io/dtrun-local/base:bookworm
#4 DONE 0.0s
#5 [stage-0 2/3] COPY requirements.txt /opt/dtrun/requirements.txt
#5 CACHED
#6 [stage-0 3/3] RUN --mount=type=cache,target=/root/.cache/pip pip install -r /opt/dtrun/requirements.txt
#6 1.234 Collecting six==1.16.0
#6 1.456 Downloading six-1.16.0-py2.py3-none-any.whl (11 kB)
#6 2.001 Successfully installed six-1.16.0
#6 DONE 2.1s
#7 exporting to image
#7 writing image sha256:0123 done
#7 DONE 0.1s""".splitlines()


def test_a_buildkit_log_gives_steps_and_a_summary() -> None:
    events: list[Event] = []
    watch = BuildWatch(events.append, "train")
    watch.start("building dtrun/bash:abc")
    for line in BUILDKIT:
        watch.line(line)
    watch.done("dtrun/bash:abc")
    summary = events[-1]
    assert summary.kind == BUILD_DONE and summary.job == "train"
    assert summary.text.startswith("built dtrun/bash:abc in ") and summary.text.endswith(" s (3 steps, 1 cached)")


def test_a_legacy_log_gives_steps_and_a_summary() -> None:
    watch = BuildWatch(lambda e: None)
    for line in ["Step 1/3 : FROM base", " ---> 1234", "Step 2/3 : COPY a b", " ---> Using cache",
                 "Step 3/3 : RUN x", "ran x"]:
        watch.line(line)
    assert watch.summary("img").endswith("(3 steps, 1 cached)")


def test_the_live_view_shows_the_step_its_time_and_the_latest_line() -> None:
    console = Console(file=io.StringIO(), width=120, force_terminal=False)
    view = LiveView(console)
    view._refresh = lambda: None  # type: ignore[method-assign]  # draw on demand only
    view.build_start("train", "building dtrun/bash:abc")
    view.build_step("train", "[stage-0 3/3] RUN pip install -r /opt/dtrun/requirements.txt")
    for line in BUILDKIT[-7:-5]:
        view.build_line("train", line)
    console.print(view)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[train] building dtrun/bash:abc" in text
    assert "[stage-0 3/3] RUN pip install" in text and " s\n" in text
    assert "Downloading six-1.16.0-py2.py3-none-any.whl (11 kB)" in text  # pip condensed to its latest line
    assert "#6" not in text
    assert view.build_end("train") == BUILDKIT[-7:-5]  # the full log, for a failure report


def test_a_transfer_shows_a_bar_only_after_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    console = Console(file=io.StringIO(), width=120, force_terminal=False)
    view = LiveView(console)
    view._refresh = lambda: None  # type: ignore[method-assign]
    view.progress("train: artifact model", 3_000_000, 10_000_000, finished=False)
    console.print(view)
    assert "artifact model" not in console.file.getvalue()  # type: ignore[attr-defined]
    view.transfers["train: artifact model"].started -= 2
    console.print(view)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "train: artifact model" in text and "3.0 MB / 10.0 MB" in text and "MB/s" in text
    view.progress("train: artifact model", 10_000_000, 10_000_000, finished=True)
    assert view.transfers == {}


def test_progress_events_count_bytes_read_and_written() -> None:
    events: list[Event] = []
    data = io.BytesIO(b"x" * 5000)
    progress = Progress(events.append, "code", job="train", total=size_of(data))
    reader = MeteredReader(data, progress)  # type: ignore[arg-type]
    while reader.read(1000):
        pass
    assert reader.tell() == 5000  # the wrapped stream's own methods pass through
    progress.close()
    progress.close()  # once only
    assert [e.kind for e in events][-1] == PROGRESS and events[-1].state == "done"
    assert (events[-1].done, events[-1].total, events[-1].job) == (5000, 5000, "train")
    assert sum(1 for e in events if e.state == "done") == 1

    sink = io.BytesIO()
    written: list[Event] = []
    writer = MeteredWriter(sink, Progress(written.append, "artifact out"))
    writer.write(b"abc")
    writer.progress.close()
    assert sink.getvalue() == b"abc" and written[-1].done == 3


def test_without_a_terminal_a_build_is_plain_prefixed_lines(capsys: pytest.CaptureFixture[str]) -> None:
    renderer = Renderer()
    assert renderer.live is None  # capsys: no terminal
    watch = BuildWatch(renderer, "train")
    watch.start("building dtrun/bash:abc")
    watch.step("[stage-0 3/3] RUN pip install")
    for line in BUILDKIT:
        watch.line(line)
    watch.done("dtrun/bash:abc")
    renderer(Event(PROGRESS, "train: code", done=10, total=10))
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0] == "  | building dtrun/bash:abc"
    assert lines[1:-1] == [f"  | {line}" for line in BUILDKIT]  # the step title is not repeated
    assert lines[-1].startswith("  built dtrun/bash:abc in ")
    assert "\x1b" not in err and "code" not in err


def test_on_a_terminal_a_failed_build_prints_its_whole_log() -> None:
    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    renderer = Renderer()
    renderer.live = LiveView(console)
    renderer.live._refresh = lambda: None  # type: ignore[method-assign]
    printed: list[str] = []
    renderer._say = lambda text, style: printed.append(text)  # type: ignore[method-assign]
    watch = BuildWatch(renderer, "train")
    watch.start("building dtrun/bash:abc")
    for line in BUILDKIT[:6]:
        watch.line(line)
    assert printed == []  # the live view holds it
    watch.failed("building failed")
    assert printed == [f"  | {line}" for line in BUILDKIT[:6]]
    renderer(Event(BUILD_STEP, "ignored after the end", job="train"))


def test_on_a_terminal_a_build_that_did_not_announce_itself_is_printed() -> None:
    """A flow's image build sends only `build` lines: they are printed, not swallowed by the view."""
    renderer = Renderer()
    renderer.live = LiveView(Console(file=io.StringIO(), force_terminal=False))
    printed: list[str] = []
    renderer._say = lambda text, style: printed.append(text)  # type: ignore[method-assign]
    renderer(Event("build", "#1 [internal] load build definition", job="ci"))
    assert printed == ["  | #1 [internal] load build definition"]
