"""Putting a stored artifact back into a container where the job had it (for `dtrun resume`).

Stored archives hold names relative to the artifact's folder; the Docker API extracts at an existing
path only, so the members are re-rooted under the folder's full path (with its parents) and the
archive is put at `/`.
"""

from __future__ import annotations

import tarfile
import tempfile
from typing import IO


def prefixed_tar(source: IO[bytes], folder: str) -> IO[bytes]:
    prefix = folder.strip("/")
    out = tempfile.TemporaryFile()  # noqa: SIM115 - returned open, closed by the reader
    with tarfile.open(fileobj=source, mode="r|") as src, tarfile.open(fileobj=out, mode="w") as dst:
        parts = prefix.split("/")
        for i in range(1, len(parts) + 1):
            info = tarfile.TarInfo("/".join(parts[:i]))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            dst.addfile(info)
        for member in src:
            name = member.name.removeprefix("./").strip("/")
            if not name:
                continue
            member.name = f"{prefix}/{name}"
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    out.seek(0)
    return out
