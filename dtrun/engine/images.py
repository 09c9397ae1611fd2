"""A job's image without the daemon, where the backend keeps a record of its images (issue 19).

Optional, like `code_volumes`, so the `Backend` protocol itself does not change: a backend that offers
`recorded_image` (what it answered last time for an image spec, from the client's own record, without
contacting its host) and `resolve_image` (`ensure_image` plus the image's id, user and HOME, in the
same lookup) lets the engine compute a job's cache key before it connects; a run whose jobs are all
cache hits then never reaches the host. Docker does (`dtrun.images.record` says why a stale record
cannot give a wrong hit); for any other backend the engine asks `ensure_image` and `image` as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from dtrun.backends.base import ImageInfo, Output
    from dtrun.config import Settings
    from dtrun.images.spec import ImageSpec


@runtime_checkable
class RecordedImages(Protocol):
    def recorded_image(self, spec: ImageSpec, settings: Settings) -> tuple[str, ImageInfo] | None: ...

    def resolve_image(self, spec: ImageSpec, settings: Settings, *, output: Output, rebuild: str = "",
                      step: Output | None = None, say: Output | None = None) -> tuple[str, ImageInfo, bool]: ...


def recorded_images(backend: Any) -> RecordedImages | None:
    """The backend, where it keeps a record of its images; else None."""
    return backend if isinstance(backend, RecordedImages) else None
