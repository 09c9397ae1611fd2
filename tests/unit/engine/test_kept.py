"""Where `cache:` paths are in a job, which volume keeps each, and the folders made before an unwrapped job."""

from __future__ import annotations

import io
import tarfile

import pytest

from dtrun.backends.base import ImageInfo
from dtrun.engine.kept import cache_target, cache_volume, folders_tar
from dtrun.errors import SpecError
from dtrun.spec.models import Workflow


def test_cache_accepts_both_of_dstacks_forms_and_refuses_another_users_home() -> None:
    workflow = Workflow.validate({"name": "w", "provider": "bash", "commands": ["true"],
                                        "cache": ["~/.cache/pip", {"path": "./models"}]})
    assert workflow.cache == ["~/.cache/pip", "./models"]
    with pytest.raises(ValueError, match="only `~/`"):
        Workflow.validate({"name": "w", "provider": "bash", "cache": ["~bob/.cache"]})


def test_tilde_is_the_image_users_home() -> None:
    assert cache_target("~/.cache/pip", "/workspace", ImageInfo("i"), "w") == "/root/.cache/pip"
    assert cache_target("~/x", "/workspace", ImageInfo("i", user="app", home="/home/app"), "w") == "/home/app/x"
    assert cache_target("./models/", "/workspace", ImageInfo("i"), "w") == "/workspace/models"
    with pytest.raises(SpecError, match="runs as user 'app' and sets no HOME"):
        cache_target("~/x", "/workspace", ImageInfo("i", user="app"), "w")


def test_one_volume_per_repository_workflow_and_path() -> None:
    one = cache_volume("local/r", "train", "/root/.cache/pip")
    assert one == cache_volume("local/r", "train", "/root/.cache/pip")
    assert len({one, cache_volume("local/r", "eval", "/root/.cache/pip"),
                cache_volume("local/s", "train", "/root/.cache/pip"), cache_volume("local/r", "train", "/x")}) == 4


def test_folders_are_open_to_a_non_root_user() -> None:
    def modes(info: ImageInfo) -> dict[str, int]:
        with tarfile.open(fileobj=io.BytesIO(folders_tar(["/workspace/out", "/opt/r/", "/"], info))) as tar:
            return {m.name: m.mode for m in tar.getmembers() if m.isdir()}

    assert modes(ImageInfo("i")) == {"workspace/out": 0o755, "opt/r": 0o755}
    assert modes(ImageInfo("i", user="1000:1000")) == {"workspace/out": 0o777, "opt/r": 0o777}


def test_a_cache_where_a_dependency_is_mounted_is_refused_and_others_get_labelled_volumes() -> None:
    from dtrun.backends.base import VolumeMount
    from dtrun.engine.kept import cache_mounts
    from tests.unit.engine.fake_backend import FakeBackend

    backend = FakeBackend()
    labels = {"dev.dtrun.repo": "local/r", "dev.dtrun.store": "s"}
    mounts = cache_mounts(backend, workflow="w", paths=["~/.cache/pip", "./models", "models/"],
                          working_dir="/workspace", info=ImageInfo("i"), labels=labels,
                          taken=[VolumeMount("ws", "/workspace")])
    assert [m.target for m in mounts] == ["/root/.cache/pip", "/workspace/models"]
    assert backend.volumes == {m.volume for m in mounts}
    with pytest.raises(SpecError, match="cache path 'data' is /workspace/data, where the job already gets"):
        cache_mounts(backend, workflow="w", paths=["data"], working_dir="/workspace", info=ImageInfo("i"),
                     labels=labels, taken=[VolumeMount("dtrun-art-x", "/workspace/data", read_only=True)])
