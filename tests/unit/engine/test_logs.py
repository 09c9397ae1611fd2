from __future__ import annotations

import io
import time

import pytest

from dtrun.engine.logs import LogSink, parse_since, split_frame, stamp_seconds, stored_lines
from dtrun.errors import DtrunError
from dtrun.masking import Masker


def test_frames_are_split_into_time_and_text() -> None:
    assert split_frame(b"2026-11-22T03:19:14.432466901Z hello\n") == (b"2026-11-22T03:19:14.432466901Z", b"hello\n")
    assert split_frame(b"no time here\n") == (None, b"no time here\n")
    assert stamp_seconds(b"1970-01-01T00:01:00.999999999Z") == pytest.approx(60.9999999)


def test_sink_masks_both_outputs_and_stamps_each_stored_line() -> None:
    stored = io.BytesIO()
    shown: list[bytes] = []
    sink = LogSink(stored, shown.append, Masker(["topsecret"]))
    sink.frame(b"2026-01-01T00:00:00Z key=top")
    sink.frame(b"2026-01-01T00:00:01Z secret\nnext\n")
    sink.frame(b"2026-01-01T00:00:02Z tail")
    sink.close()
    assert b"".join(shown) == b"key=***\nnext\ntail"
    assert stored.getvalue() == (b"2026-01-01T00:00:00Z key=***\n2026-01-01T00:00:01Z next\n"
                                 b"2026-01-01T00:00:02Z tail\n")


def test_stored_lines_since() -> None:
    lines = [b"2026-01-01T00:00:00Z a\n", b"2026-01-01T00:10:00Z b\n", b"2026-01-01T00:20:00Z c\n"]
    since = stamp_seconds("2026-01-01T00:05:00Z")
    assert [t for _, t in stored_lines(lines, since)] == [b"b\n", b"c\n"]
    assert len(list(stored_lines(lines))) == 3


def test_parse_since() -> None:
    now = time.time()
    assert parse_since("5m", now) == pytest.approx(now - 300)
    assert parse_since("2h", now) == pytest.approx(now - 7200)
    assert parse_since("2026-01-01T00:00:00Z") == stamp_seconds("2026-01-01T00:00:00Z")
    with pytest.raises(DtrunError, match="--since"):
        parse_since("yesterday-ish")


def test_catch_up_feeds_only_what_the_live_stream_missed() -> None:
    """The live stream ended early (as Docker's `follow` does for short jobs): the full log read after the
    exit adds the missing frames once, however Docker trimmed the times' trailing zeros."""
    full = [b"2026-01-01T00:00:00.1Z a\n", b"2026-01-01T00:00:00.123Z b\n",
            b"2026-01-01T00:00:00.123Z b-part2", b"2026-01-01T00:00:01Z final-no-newline"]
    stored = io.BytesIO()
    shown: list[bytes] = []
    sink = LogSink(stored, shown.append, Masker([]))
    for frame in full[:3]:
        sink.frame(frame)
    assert sink.catch_up(full) == 1
    assert sink.catch_up(full) == 0  # read again: nothing doubled
    sink.close()
    assert b"".join(shown) == b"a\nb\nb-part2final-no-newline"
    assert stored.getvalue().count(b"final-no-newline") == 1


def test_catch_up_after_a_stream_that_caught_nothing_or_everything() -> None:
    full = [b"2026-01-01T00:00:00.5Z x\n", b"2026-01-01T00:00:00.5Z x\n", b"2026-01-01T00:00:00.7Z y"]
    shown: list[bytes] = []
    sink = LogSink(io.BytesIO(), shown.append, Masker([]))
    assert sink.catch_up(full) == 3  # the stream showed nothing: all of it, equal lines included
    shown.clear()
    sink = LogSink(io.BytesIO(), shown.append, Masker([]))
    sink.frame(full[0])  # one of two identical frames at the same time was streamed: the other is new
    assert sink.catch_up(full) == 2
    assert b"".join(shown) == b"x\nx\ny"
