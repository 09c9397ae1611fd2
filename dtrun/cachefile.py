"""The client's small caches in its data folder (`cache/`): the image record, when each image was last
used, the base images' probes, the code trees seen complete in each code volume (JSON), parsed YAML files
(`dtrun.spec.yamlcache`). A missing or damaged file reads as empty (each is a cache: losing one costs a
lookup, never a wrong answer); a write replaces the file whole, so a reader never sees half of one."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


def cache_path(name: str) -> Path:
    from dtrun.config import data_home

    return data_home() / "cache" / name


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(data, indent=0, sort_keys=True))


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # one temporary name per writer (jobs of one run build in parallel threads of one process)
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}")
    tmp.write_bytes(data)
    tmp.replace(path)
