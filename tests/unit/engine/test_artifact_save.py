"""Saving an artifact from a stream that fails part-way: nothing is recorded, no temporary file is left
in the store, the error is the source's own, and the read-ahead thread lets go of the source."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtrun.engine.artifacts import save_members
from dtrun.store import Store
from dtrun.store.archive import NotAFolder, tar_members, write_members
from dtrun.store.streams import Prefetch
from tests.unit.store.test_tarstream import chunked, sample_tar


class Lost(ConnectionError):
    pass


@pytest.mark.parametrize("cut", [600, 4096, 40000])  # in a header, in a file's data, later on
def test_a_source_that_fails_midway_records_nothing(cut: int, tmp_path: Path) -> None:
    data, _ = sample_tar()
    store = Store(str(tmp_path / "store"), "local/p")
    closed = threading.Event()

    def source() -> Iterator[bytes]:
        try:
            yield from chunked(data[:cut], 1000)
            raise Lost("the daemon went away")
        finally:
            closed.set()

    with pytest.raises(Lost, match="went away"), Prefetch(source(), batch=2000) as chunks:
        save_members(store, "job", "out", "/workspace/out", tar_members(chunks))
    assert closed.wait(5)
    folder = Path(store.job_path("job", "artifacts"))
    assert sorted(os.listdir(folder)) == []  # no tar, no manifest, no temporary file


def test_a_consumer_that_stops_early_closes_the_source(tmp_path: Path) -> None:
    """An artifact refused at its first member (a file where a folder is declared) stops the export:
    the read-ahead thread stops reading and lets go of the daemon's stream at once."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("model.bin")
        info.size = 3 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    closed = threading.Event()
    pulled = []

    def source() -> Iterator[bytes]:
        try:
            for chunk in chunked(buffer.getvalue(), 32768):
                pulled.append(len(chunk))
                yield chunk
        finally:
            closed.set()

    with pytest.raises(NotAFolder), Prefetch(source(), batch=32768, depth=2) as chunks:
        write_members(tar_members(chunks), io.BytesIO())
    assert closed.wait(5)
    assert sum(pulled) < len(buffer.getvalue()) // 2  # not read to its end
