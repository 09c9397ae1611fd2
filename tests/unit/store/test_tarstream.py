"""The export's tar framing: members of a chunked stream, the stored tar written from views, and the
stream adapters around them (read-ahead thread, background writer)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtrun.store.archive import tar_members, write_members
from dtrun.store.streams import BackgroundWriter, Prefetch
from dtrun.store.tarstream import TarWriter, Truncated, stream_members

LONG = "deep/" + "d" * 120 + "/" + "n" * 150 + ".bin"  # needs a PAX (or GNU) long-name record


def sample_tar(fmt: int = tarfile.PAX_FORMAT) -> tuple[bytes, dict[str, bytes]]:
    """A tar as the daemon sends one (top folder `out`), and every regular file's bytes."""
    files = {"out/a.txt": b"hello\n", "out/empty": b"", "out/block": os.urandom(512),
             f"out/{LONG}": os.urandom(70001), "out/ünï cödé": b"x" * 1023}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for folder in ("out", "out/deep", f"out/{os.path.dirname(LONG)}"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.uname = len(data), 0o640, 1000, "someone"
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("out/link")
        link.type, link.linkname = tarfile.SYMTYPE, "a.txt"
        tar.addfile(link)
    return buffer.getvalue(), files


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
@pytest.mark.parametrize("size", [1, 7, 511, 512, 513, 32768, 1 << 20])
def test_members_of_any_chunking_match_tarfile(fmt: int, size: int) -> None:
    data, files = sample_tar(fmt)
    seen: dict[str, bytes] = {}
    kinds = []
    for member, body in stream_members(chunked(data, size)):
        kinds.append((member.name, member.type))
        if body is not None:
            seen[member.name] = b"".join(body.pieces())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert kinds == [(m.name, m.type) for m in tar]
    assert seen == files


def test_unread_data_is_skipped() -> None:
    data, _ = sample_tar()
    names = [m.name for m, _ in stream_members(chunked(data, 1000))]  # no data read at all
    assert names[-1] == "out/link" and f"out/{LONG}" in names


def test_read_and_pieces_can_be_mixed() -> None:
    data, files = sample_tar()
    for member, body in stream_members(chunked(data, 300)):
        if member.name == f"out/{LONG}":
            assert body is not None
            head = body.read(10)
            rest = b"".join(body.pieces())
            assert head + rest == files[member.name]


@pytest.mark.parametrize(("cut", "where"), [
    ("mid-data", "in the middle of out/"), ("between members", "at the end of a member"),
    ("no end marker", "at the end of a member"), ("half the end marker", "inside tar's end-of-archive marker"),
    ("mid-header", "in the middle of a member's header"), ("empty", "before its first member was complete")])
def test_a_stream_that_breaks_off_is_an_error_never_a_shorter_archive(cut: str, where: str) -> None:
    data, _ = sample_tar()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    last = members[-1]  # the symlink: its header ends where the end marker starts
    marker = last.offset_data
    end = {"mid-data": len(data) // 2, "between members": last.offset, "no end marker": marker,
           "half the end marker": marker + 512, "mid-header": last.offset + 100, "empty": 0}[cut]
    with pytest.raises(Truncated) as caught:
        for _member, body in stream_members(chunked(data[:end], 4096)):
            if body is not None:
                b"".join(body.pieces())
    assert caught.value.where.startswith(where)
    assert isinstance(caught.value, tarfile.ReadError)  # what callers that know only tarfile catch


@pytest.mark.parametrize("padding", ["two zero blocks, as the daemon's Go writer ends", "padded to a record"])
def test_an_archive_with_its_whole_end_marker_is_complete(padding: str) -> None:
    data, files = sample_tar()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        marker = tar.getmembers()[-1].offset_data
    stream = data[:marker + 1024] if padding.startswith("two") else data
    got = {m.name: b"".join(body.pieces()) for m, body in stream_members(chunked(stream, 1000)) if body}
    assert got == files


def test_the_writer_writes_what_tarfile_writes_byte_for_byte() -> None:
    data, _ = sample_tar()
    expected = io.BytesIO()
    written = io.BytesIO()
    writer = TarWriter(written)
    with tarfile.open(fileobj=io.BytesIO(data)) as src, \
            tarfile.TarFile(fileobj=expected, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            body = src.extractfile(member) if member.isreg() else None
            content = body.read() if body else b""
            dst.addfile(member, io.BytesIO(content) if body else None)
            writer.add(member, [memoryview(content)[:5], memoryview(content)[5:]] if body else [])
    writer.close()
    assert written.getvalue() == expected.getvalue()


def test_the_writer_hashes_exactly_the_data_it_writes() -> None:
    info = tarfile.TarInfo("f")
    content = os.urandom(70001)
    info.size = len(content)
    hasher = hashlib.sha256()
    written = io.BytesIO()
    writer = TarWriter(written)
    writer.add(info, chunked(content, 32768), hasher)
    writer.close()
    assert hasher.hexdigest() == hashlib.sha256(content).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(written.getvalue())) as tar:
        assert tar.extractfile("f").read() == content  # type: ignore[union-attr]
    assert writer.offset == len(written.getvalue()) and writer.offset % tarfile.RECORDSIZE == 0


def refilled(data: bytes, size: int) -> Iterator[memoryview]:
    """`data` as views of one buffer refilled for every chunk (a client reading with `recv_into`):
    a view kept past the next chunk would see that chunk's bytes."""
    buffer = bytearray(size)
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        buffer[:len(piece)] = piece
        yield memoryview(buffer)[:len(piece)]
        buffer[:] = b"\xff" * size  # what a reused buffer holds by the time the consumer looks again


@pytest.mark.parametrize("size", [7, 512, 700, 32768])
def test_members_and_digests_from_views_of_a_refilled_buffer(size: int, tmp_path: Path) -> None:
    """Headers that span two chunks are copied before the next chunk comes; data views are hashed and
    written before it: straight, or through the export's threads (which keep copies)."""
    data, files = sample_tar()
    expected = write_members(tar_members(io.BytesIO(data)), io.BytesIO())
    seen = {m.name: b"".join(bytes(p) for p in body.pieces()) for m, body in stream_members(refilled(data, size))
            if body is not None}
    assert seen == files
    assert write_members(tar_members(refilled(data, size)), io.BytesIO()).digest == expected.digest
    with open(tmp_path / "stored.tar", "wb") as fh:
        writer = BackgroundWriter(fh, batch=1000)
        with Prefetch(refilled(data, size), batch=5000) as chunks:
            assert write_members(tar_members(chunks), writer).digest == expected.digest
        writer.finish()
    with tarfile.open(tmp_path / "stored.tar") as tar:
        stored = {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}  # type: ignore[union-attr]
    assert stored == {k.removeprefix("out/"): v for k, v in files.items()}


def test_the_writer_refuses_data_that_does_not_match_the_size() -> None:
    info = tarfile.TarInfo("f")
    info.size = 4
    with pytest.raises(OSError, match="unexpected end"):
        TarWriter(io.BytesIO()).add(info, [b"abc"])
    with pytest.raises(OSError, match="more data"):
        TarWriter(io.BytesIO()).add(info, [b"abcde"])


def test_stored_form_and_digests_from_a_stream(tmp_path: Path) -> None:
    """The stream path's manifest: every file's sha256, and the stored tar holds the same bytes."""
    data, files = sample_tar()
    out = tmp_path / "stored.tar"
    with open(out, "wb") as fh:
        writer = BackgroundWriter(fh)
        with Prefetch(chunked(data, 32768)) as chunks:
            manifest = write_members(tar_members(chunks), writer)
        writer.finish()
    by_path = {str(f["path"]): f for f in manifest.files}
    for name, content in files.items():
        assert by_path[name.removeprefix("out/")]["sha256"] == hashlib.sha256(content).hexdigest()
    with tarfile.open(out) as tar:
        stored = {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}  # type: ignore[union-attr]
        assert all(m.uid == 0 and m.uname == "" for m in tar.getmembers())
    assert stored == {k.removeprefix("out/"): v for k, v in files.items()}
    # the same tar read as a file gives the same content key
    assert write_members(tar_members(io.BytesIO(data)), io.BytesIO()).digest == manifest.digest


def test_background_writer_keeps_order_and_copies_what_may_change(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    mutable = bytearray(b"before")
    expected = b""
    with open(target, "wb") as fh:
        writer = BackgroundWriter(fh, batch=1000)
        for i in range(3000):
            piece = os.urandom(i % 700)
            expected += piece
            writer.write(memoryview(piece)[: len(piece)] if i % 2 else piece)
        writer.write(mutable)
        mutable[:] = b"AFTER!"
        writer.finish()
    assert target.read_bytes() == expected + b"before"
    sink = io.BytesIO()  # not a file: joined writes instead of writev
    writer = BackgroundWriter(sink, batch=10)  # type: ignore[arg-type]
    pieces: list[bytes | memoryview] = [b"abc", memoryview(b"defghijklmnop")[2:], b"q" * 20]
    for each in pieces:
        writer.write(each)
    writer.finish()
    assert sink.getvalue() == b"abc" + b"fghijklmnop" + b"q" * 20


def test_background_writer_reports_a_failed_write_through_its_guard(tmp_path: Path) -> None:
    from contextlib import contextmanager

    class Full(Exception):
        pass

    @contextmanager
    def guard() -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise Full(str(exc)) from None

    with open(tmp_path / "x", "wb") as fh:
        writer = BackgroundWriter(fh, guard=guard, batch=1)
        os.close(fh.fileno())  # the next write fails (EBADF), as a full disk would
        with pytest.raises(Full):
            for _ in range(100):  # the error surfaces on a later write or at finish
                writer.write(b"data")
            writer.finish()
        with pytest.raises(OSError):
            fh.close()


def test_prefetch_raises_the_source_error_where_the_reader_reaches_it() -> None:
    def source() -> Iterator[bytes]:
        yield b"a" * 100
        yield b"b" * 100
        raise ConnectionError("the daemon went away")

    got = b""
    with pytest.raises(ConnectionError, match="went away"), Prefetch(source(), batch=150) as chunks:
        for chunk in chunks:
            got += chunk
    assert got == b"a" * 100 + b"b" * 100


def test_prefetch_close_stops_the_thread_without_reading_everything() -> None:
    pulled = []

    def endless() -> Iterator[bytes]:
        while True:
            pulled.append(1)
            yield b"x" * 1000

    with Prefetch(endless(), batch=1000, depth=2) as chunks:
        next(iter(chunks))
    threads = [t for t in threading.enumerate() if t.name == "dtrun-prefetch"]
    for t in threads:
        t.join(timeout=5)
    assert not any(t.is_alive() for t in threads)
    assert len(pulled) < 100
