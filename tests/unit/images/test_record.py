"""The client's record of each host's images (issue 19): what `resolve_image` saw, answered again
without the daemon by `recorded_image`; `known_image` asks the daemon with two exact inspects."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

from dtrun.backends.base import ImageInfo
from dtrun.config import Settings
from dtrun.images import record
from dtrun.images.manager import known_image, recorded_image, resolve_image
from dtrun.images.spec import ImageSpec

if TYPE_CHECKING:
    from dtrun.images.host import ImageHost


class Host:
    """An image host that says what it was asked."""

    def __init__(self, images: dict[str, ImageInfo]) -> None:
        self.images = images
        self.asked: list[str] = []

    def image(self, ref: str) -> ImageInfo | None:
        self.asked.append(f"inspect {ref}")
        return self.images.get(ref)


@pytest.fixture(autouse=True)
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path / "data"))


def test_an_image_named_by_digest_is_recorded_per_host_and_answered_without_the_host() -> None:
    ref = "site/tool@sha256:" + "a" * 64
    spec, settings = ImageSpec("docker", user_image=ref), Settings(store="s")
    host = Host({ref: ImageInfo(id="sha256:a", tags=[ref], user="app", home="/home/app")})
    assert recorded_image(spec, settings, "unix:///one") is None  # never seen
    tag, info, built = resolve_image(cast("ImageHost", host), spec, settings, docker_host=None, where="unix:///one",
                                     output=print)
    assert (tag, info.id, built) == (ref, "sha256:a", False)
    host.asked.clear()
    assert recorded_image(spec, settings, "unix:///one") == \
        (ref, ImageInfo(id="sha256:a", tags=[ref], user="app", home="/home/app"))
    assert host.asked == []
    assert recorded_image(spec, settings, "ssh://other") is None  # another daemon's images never answer


def test_an_image_named_by_tag_is_always_asked_of_the_host() -> None:
    """A tag moves when the user pulls a newer image: the record cannot know which image it names now."""
    spec, settings = ImageSpec("docker", user_image="site/tool:1"), Settings(store="s")
    host = Host({"site/tool:1": ImageInfo(id="sha256:a", tags=["site/tool:1"], user="app")})
    resolve_image(cast("ImageHost", host), spec, settings, docker_host=None, where="unix:///one", output=print)
    assert recorded_image(spec, settings, "unix:///one") is None


def test_a_remembered_tag_is_checked_by_two_exact_inspects_and_another_id_is_recorded() -> None:
    tag = "dtrun/bash:0123"
    record.remember("key", tag, ImageInfo(id="sha256:t", user="u", home="/h"), base_id="sha256:b")
    host = Host({"base": ImageInfo(id="sha256:b", tags=["base:latest"]),
                 tag: ImageInfo(id="sha256:t", tags=[tag], user="u", home="/h")})
    found = known_image(cast("ImageHost", host), "key", "base")
    assert found is not None and (found[0], found[1].id, found[1].user, found[1].home) == (tag, "sha256:t", "u", "/h")
    assert host.asked == [f"inspect {tag}", "inspect base"]

    host.images[tag] = ImageInfo(id="sha256:t2", tags=[tag], user="v")  # rebuilt since (another client)
    found = known_image(cast("ImageHost", host), "key", "base")
    assert found is not None and (found[1].id, found[1].user) == ("sha256:t2", "v")
    assert record.recorded("key") == (tag, ImageInfo(id="sha256:t2", tags=[tag], user="v"))

    host.images["base"] = ImageInfo(id="sha256:b2", tags=["base:latest"])  # the base moved: no answer
    assert known_image(cast("ImageHost", host), "key", "base") is None


def test_a_missing_tag_takes_one_inspect_and_no_answer() -> None:
    record.remember("key", "dtrun/bash:0123", ImageInfo(id="sha256:t"), base_id="sha256:b")
    host = Host({"base": ImageInfo(id="sha256:b", tags=["base:latest"])})
    assert known_image(cast("ImageHost", host), "key", "base") is None
    assert host.asked == ["inspect dtrun/bash:0123"]


def test_a_gpu_image_is_not_answered_from_the_record() -> None:
    """Its base follows the host's NVIDIA driver, which only the host can say."""
    spec = ImageSpec("python", gpu=True)
    assert recorded_image(spec, Settings(store="s"), "unix:///one") is None


def test_an_entry_written_before_ids_were_kept_does_not_answer() -> None:
    record.write({"key": {"tag": "dtrun/bash:0123", "base_id": "sha256:b"}})
    assert record.recorded("key") is None
