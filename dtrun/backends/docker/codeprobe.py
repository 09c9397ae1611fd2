"""Whether overlay views of a code volume mount on a daemon (`codevolumes.code_view`), asked once per
daemon: some daemons (rootless, some storage setups) cannot mount an overlay `local` volume, and a job's
view then falls back to a copy (`codevolumes.copy_view`)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _probe_file(daemon_id: str) -> Path:
    from dtrun.cachefile import cache_path

    return cache_path(f"hosts/{daemon_id.replace(':', '_')}.overlay.json")


def overlay_works(client: Any, image: Callable[[], str], code: Any, labels: dict[str, str],
                  daemon_id: str) -> bool:
    """Whether overlay views mount on this daemon: a view of `code`'s tree, `true` run with it.
    Asked once per daemon (its ID) and kept beside the host description (`hostinfo.py`)."""
    import json

    from dtrun.backends.docker.codevolumes import code_view, remove_view
    from dtrun.backends.docker.engineapi import errors as api_errors
    from dtrun.backends.docker.engineapi.create import Mount

    cache = _probe_file(daemon_id) if daemon_id else None
    if cache is not None:
        with contextlib.suppress(OSError, ValueError):
            return bool(json.loads(cache.read_text())["overlay"])
    name = f"dtrun-probe-{uuid.uuid4().hex[:12]}"
    works = True
    try:
        code_view(client, code.volume, code.build, name, labels)
        client.containers.run(image(), ["true"], remove=True, labels=labels, network_disabled=True,
                              mounts=[Mount(target="/workspace", source=name, type="volume")])
    except api_errors.DockerException as exc:
        if "mount" not in str(exc).lower():  # the image cannot run `true`: no answer, nothing cached
            return True  # (the job's own start says it if the view does not mount after all)
        works = False
    finally:
        remove_view(client, name)
    if cache is not None:
        from dtrun.cachefile import write_json

        with contextlib.suppress(OSError):
            write_json(cache, {"overlay": works})
    return works
