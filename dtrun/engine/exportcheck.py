"""What tells a complete export of an artifact from a broken one, said in dtrun's words.

The daemon's archive of a container's folder (GET /containers/{id}/archive) is read as HTTP/1.0 to the end
of the connection: it carries no length, so a connection that closes early looks like a body that is over.
What tells them apart is the tar itself: a complete archive ends with its end-of-archive marker (two zero
blocks), which `dtrun.store.tarstream` requires; a cut one ends inside a member, or between two members
without the marker. Either way, and when the stream itself fails (a reset connection), the user gets one
`ArtifactExportError` naming the job, the artifact, the folder and how many bytes came, not the tar
reader's or the socket's words; `save_members` has by then removed what it had written.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator

from dtrun.errors import ArtifactExportError

HINT = ("nothing of this artifact was stored (an earlier complete copy, if any, is kept). The connection to the "
        "Docker daemon broke, or something on the way (a proxy, an ssh tunnel) cut it: run the job again; "
        "if it keeps happening, check that link (`dtrun doctor`)")


class Received:
    """The daemon's chunks as they come, counted; a failure of the stream itself is remembered, so it is
    told apart from a failure of what reads it. Closing it (an export stopped early) closes the stream."""

    def __init__(self, source: Iterable[bytes]) -> None:
        self.source = source
        self.count = 0
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self.source:
                self.count += len(chunk)
                yield chunk
        except Exception as exc:
            self.error = exc
            raise
        finally:
            close = getattr(self.source, "close", None)
            if close is not None:
                close()  # the daemon keeps the container locked while its archive is open


def broken_export(exc: BaseException, received: Received, *, job: str, path: str,
                  source: str) -> ArtifactExportError | None:
    """The user's error for an export that `exc` stopped, or None when `exc` is not about the stream (a
    full disk, an unsafe member: those have their own errors)."""
    from dtrun.store.tarstream import Truncated

    n = received.count
    if exc is received.error:
        reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        what = f"broke off after {n} bytes ({reason})"
    elif isinstance(exc, Truncated):
        what = f"ended after {n} bytes, {exc.where}"
    elif isinstance(exc, tarfile.TarError):
        what = f"is not a valid tar archive ({exc}; {n} bytes came)"
    else:
        return None
    return ArtifactExportError(f"job {job}: artifact {path}: the Docker daemon's archive of {source} {what}",
                               hint=HINT)
