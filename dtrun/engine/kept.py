"""What a job finds in place when it starts: its `cache:` paths and, where no prelude could make them,
its artifact folders.

`cache:` (dstack 0.7) keeps paths such as `~/.cache/pip` or `./models` between runs of the same
workflow in the same repository on the same host. Each path gets one volume of the backend, named
after the repository, the workflow and the path inside the job, labelled so that `dtrun volumes`
lists and prunes it, and mounted at that path. The engine asks for it through the `Backend` protocol
(`create_volume`, then a `VolumeMount`), so any backend with named volumes keeps caches.

A job whose command dtrun cannot wrap (the docker provider's image run as it is, its ENTRYPOINT
respected) has its artifact folders made by the engine before it starts, through `put_archive`, the
way the prelude makes them for every other job (`providers.base.artifact_folders`).
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tarfile
from collections.abc import Sequence

from dtrun.backends.base import LABEL, Backend, ImageInfo, VolumeMount
from dtrun.errors import SpecError
from dtrun.plan import container_path

#: Marks a cache volume (and `dtrun volumes` lists what carries it); the prefix of their names.
CACHE_LABEL = f"{LABEL}.cache"
CACHE_PREFIX = "dtrun-cache-"
_ROOT_USERS = ("", "root", "0", "0:0", "root:root")


def home(info: ImageInfo, workflow: str, path: str) -> str:
    """Where `~` is for a job of this image: its `HOME`, else root's home when it runs as root."""
    if info.home:
        return info.home
    if info.user in _ROOT_USERS:
        return "/root"
    raise SpecError(f"workflow '{workflow}': cache path '{path}' starts with `~`, but its image runs as user "
                    f"'{info.user}' and sets no HOME, so dtrun cannot tell where that user's home is",
                    hint="write the path in full (e.g. /home/USER/.cache/pip), or set HOME in the image")


def cache_target(path: str, working_dir: str, info: ImageInfo, workflow: str) -> str:
    """A `cache:` path as seen in the job: `~` is the home of the image's user; relative paths are under
    the working directory, like artifact paths."""
    if path == "~" or path.startswith("~/"):
        return posixpath.normpath(home(info, workflow, path) + path[1:])
    return container_path(working_dir, path)


def cache_volume(repo: str, workflow: str, target: str) -> str:
    """The volume of one cached path: the same for every run of this workflow in this repository."""
    key = json.dumps([repo, workflow, target])
    return CACHE_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:24]


def cache_mounts(backend: Backend, *, workflow: str, paths: list[str], working_dir: str, info: ImageInfo,
                 labels: dict[str, str], taken: Sequence[VolumeMount] = ()) -> list[VolumeMount]:
    """The job's cache volumes, created on first use, mounted at their paths.

    `labels` are the engine's (repository and store); the volume adds what it keeps, so that
    `dtrun volumes list` can say it. The run's and job's labels are left out: a cache outlives them.
    `taken` are the job's other mounts (workspace, dependencies): a cache cannot be mounted where one is.
    """
    occupied = {m.target for m in taken}
    repo = labels.get(f"{LABEL}.repo", "")
    mounts: dict[str, VolumeMount] = {}
    for path in paths:
        target = cache_target(path, working_dir, info, workflow)
        if target == "/":
            raise SpecError(f"workflow '{workflow}': cache path '{path}' is the root of the job's file system",
                            hint="name the folder to keep, e.g. ~/.cache/pip")
        if target in occupied:
            raise SpecError(f"workflow '{workflow}': cache path '{path}' is {target}, where the job already "
                            "gets its workspace or a dependency's artifact",
                            hint="cache another folder (a subfolder of the working directory, or ~/.cache/...)")
        name = cache_volume(repo, workflow, target)
        backend.create_volume(name, {**labels, CACHE_LABEL: "1", f"{CACHE_LABEL}.workflow": workflow,
                                     f"{CACHE_LABEL}.path": target})
        mounts[target] = VolumeMount(name, target)
    return list(mounts.values())


def folders_tar(paths: list[str], info: ImageInfo) -> bytes:
    """A tar of empty folders at `paths` (absolute, in the job), to extract at `/` before the job starts.

    Extraction makes their parents as the daemon does (root's, 0755). The folders themselves are
    root's: open to every user (0777) when the image runs as someone else, who must be able to write them.
    """
    mode = 0o755 if info.user in _ROOT_USERS else 0o777
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in dict.fromkeys(posixpath.normpath(p) for p in paths):
            if path == "/":
                continue
            entry = tarfile.TarInfo(path.lstrip("/"))
            entry.type, entry.mode = tarfile.DIRTYPE, mode
            tar.addfile(entry)
    return buffer.getvalue()
