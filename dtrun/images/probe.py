"""What a base image already has (python3 and its version, conda), probed once per image id.

Principle 7 of the design: images adapt to their base. The probe is one short container run; its
result is cached on disk by the image id, so it is paid once per base, not once per build.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from dtrun.cachefile import cache_path, read_json, write_json
from dtrun.structs import struct

if TYPE_CHECKING:
    from dtrun.images.host import ImageHost

_SCRIPT = (
    "command -v conda >/dev/null 2>&1 && echo conda=yes; "
    "command -v python3 >/dev/null 2>&1 && python3 -c "
    "'import sys; print(\"python=%d.%d\" % sys.version_info[:2])'; "
    "python3 -c 'import venv, ensurepip' >/dev/null 2>&1 && echo venv=yes; "
    "command -v apt-get >/dev/null 2>&1 && echo apt=yes; "
    "command -v curl >/dev/null 2>&1 && echo curl=yes; true"
)


@struct(frozen=True)
class BaseInfo:
    image_id: str
    python: str | None = None
    conda: bool = False
    venv: bool = False
    apt: bool = False
    curl: bool = False


CACHE = "base-probes-v2.json"


def probe_base(host: ImageHost, image_ref: str, image_id: str) -> BaseInfo:
    cache = read_json(cache_path(CACHE))
    if image_id in cache:
        return BaseInfo(**cache[image_id])
    output = host.run_probe(image_ref, ["sh", "-c", _SCRIPT], {"dev.dtrun.probe": "1"})
    values = dict(line.split("=", 1) for line in output.decode().split() if "=" in line)
    info = BaseInfo(image_id=image_id, python=values.get("python"), conda=values.get("conda") == "yes",
                    venv=values.get("venv") == "yes", apt=values.get("apt") == "yes",
                    curl=values.get("curl") == "yes")
    cache[image_id] = asdict(info)
    write_json(cache_path(CACHE), cache)
    return info
