"""An image that is not on the host and cannot be pulled: the hint fits what named it."""

from __future__ import annotations

import pytest

from dtrun.backends.base import ImageInfo
from dtrun.errors import BuildError, DtrunError
from dtrun.images.manager import _get_or_pull


class Offline:
    """A host with no images that reaches no registry."""

    def image(self, ref: str) -> ImageInfo | None:
        return None

    def pull_image(self, ref: str) -> ImageInfo:
        raise DtrunError(f"pulling {ref} failed: dial tcp: lookup registry-1.docker.io: no such host")


def test_a_workflows_own_image_gets_a_hint_about_that_image() -> None:
    with pytest.raises(BuildError) as error:
        _get_or_pull(Offline(), "tensorflow/tensorflow:1.15.0-py3", "image")
    assert error.value.message.startswith("image tensorflow/tensorflow:1.15.0-py3 is not on the Docker host")
    assert "docker save tensorflow/tensorflow:1.15.0-py3" in str(error.value.hint)
    assert "DTRUN_BASE_IMAGE" not in str(error.value.hint)


def test_a_base_image_gets_the_base_image_settings() -> None:
    with pytest.raises(BuildError) as error:
        _get_or_pull(Offline(), "debian:bookworm-slim", "base image")
    assert "DTRUN_BASE_IMAGE" in str(error.value.hint) and "make base-image" in str(error.value.hint)
