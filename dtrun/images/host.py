"""What the image manager needs from the host that builds and keeps images (a backend implements it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from dtrun.backends.base import ImageInfo


class ImageHost(Protocol):
    def image(self, ref: str) -> ImageInfo | None: ...
    def pull_image(self, ref: str) -> ImageInfo: ...
    def discard_image(self, ref: str) -> None: ...
    def run_probe(self, image: str, argv: list[str], labels: dict[str, str]) -> bytes: ...
    def legacy_build(self, folder: Path, tag: str, labels: dict[str, str],
                     build_args: dict[str, str]) -> Iterator[dict[str, Any]]: ...
