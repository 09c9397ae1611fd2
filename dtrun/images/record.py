"""The client's record of the images it found on each Docker host: what lets a cache hit skip the daemon.

`cache/image-tags.json` in the data folder maps a lookup key to what this client last saw on the daemon
for it: the tag, the base image's id the tag was computed from (generated images only), and the tag's
image id, user and HOME. The key is everything that decides which tag an image spec gets apart from the
daemon's state: for a generated image the spec, the base reference, the builder kind, the templates and
the host's URL (`manager.lookup_key`); for an image the workflow names, the reference and the host's URL.
Every lookup that asks the daemon writes the entry again (`manager.resolve_image`), so an image rebuilt
or pulled by dtrun on this client is recorded before any later run reads the record.

Why a stale entry does not give a wrong cache hit: the engine computes a job's cache key with the
image id from this record (`recorded`) only to look the key up; the id is part of the key. An image
rebuilt by dtrun here (`--rebuild`, `dtrun images build`, a new base or requirements) gets a new
entry with its new id, so the key differs, the lookup misses and the job takes the normal path, which
asks the daemon. An image removed from the host keeps its entry: a key that still matches names the
outputs that very image produced, which is what the cache promises (the job's result for that code,
spec, variables, image and inputs); a job that has to run finds the image gone, rebuilds it under the
same content tag and records the new id. An entry is per host (the URL is in the key), so another
daemon's images never answer for this one. Only references that cannot move are answered from the
record (`manager.recorded_image`): generated images, whose tag is their content, and images named by
digest. An image the workflow names by tag is always asked of the daemon, since a `docker pull` or
`docker tag` on the host moves it and the job must then run on the new image. What the record cannot
see is a generated image's base pulled again under the same name by something other than dtrun: until
a run of this client asks the daemon again (a cache miss, `--no-cache`, `dtrun images build`), a cache
hit is judged against the image as this client last saw it, the image the reused outputs came from.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from dtrun.backends.base import ImageInfo
from dtrun.cachefile import cache_path, read_json, write_json

FILE = "image-tags.json"


def read() -> dict[str, Any]:
    return read_json(cache_path(FILE))


def write(data: dict[str, Any], path: Path | None = None) -> None:
    write_json(path or cache_path(FILE), data)


_lock = threading.Lock()


def remember(key: str, tag: str, info: ImageInfo, base_id: str | None = None) -> None:
    """What the daemon said of `tag` (looked up for `key`) just now."""
    entry: dict[str, Any] = {"tag": tag, "id": info.id, "user": info.user, "home": info.home}
    if base_id is not None:
        entry["base_id"] = base_id
    with _lock:
        data = read()
        if data.get(key) != entry:
            data[key] = entry
            write(data)


def entry(key: str) -> dict[str, Any] | None:
    found = read().get(key)
    return found if isinstance(found, dict) else None


def recorded(key: str) -> tuple[str, ImageInfo] | None:
    """The tag and image (id, user, HOME) recorded for `key`, without asking the daemon; None when
    this client has not seen it yet (or recorded it before ids were kept)."""
    found = entry(key)
    if found is None or not found.get("id") or "user" not in found:
        return None
    tag = str(found["tag"])
    home = found.get("home")
    return tag, ImageInfo(id=str(found["id"]), tags=[tag], user=str(found.get("user") or ""),
                          home=str(home) if home else None)

