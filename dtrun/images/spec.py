"""What a job needs from its image, independent of how it gets built."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ImageSpec:
    """The inputs of one generated image.

    `user_image` short-circuits generation: the docker provider runs the user's image as it is.
    """

    provider: str
    python: str | None = None
    python_install: str = "auto"
    gpu: bool = False
    cuda: str | None = None
    base: str | None = None
    requirements: bytes | None = None
    apt_packages: tuple[str, ...] = ()
    pip_packages: tuple[str, ...] = ()
    user_image: str | None = None
    extra_env: tuple[tuple[str, str], ...] = field(default_factory=tuple)
