"""Locating and rendering the Dockerfile templates of the top-level `images/` folder."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

#: Bumped whenever a template changes meaning; part of every image hash.
TEMPLATE_VERSION = "3"


def templates_dir() -> Path:
    """`DTRUN_IMAGES_DIR` (a site's own templates), else `images/` in a checkout or `dtrun/_images`."""
    override = os.environ.get("DTRUN_IMAGES_DIR")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_images", here.parent / "images"):
        if (candidate / "Dockerfile.j2").is_file():
            return candidate
    raise FileNotFoundError("dtrun's Dockerfile templates (images/Dockerfile.j2) are missing from the install")


def fingerprint() -> str:
    """A hash of every template and data file in use, so that a remembered tag never outlives an edit
    of them (even one made without bumping `TEMPLATE_VERSION`, as happens while developing)."""
    return _fingerprint(str(templates_dir()))


@functools.lru_cache(maxsize=4)
def _fingerprint(folder: str) -> str:
    import hashlib

    digest = hashlib.sha256(TEMPLATE_VERSION.encode())
    data = Path(__file__).resolve().parent / "data"
    for root in (Path(folder), data):
        for path in sorted(root.rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    from dtrun import __version__

    digest.update(__version__.encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=4)
def _environment(folder: str) -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(name: str, **context: Any) -> str:
    text = _environment(str(templates_dir())).get_template(name).render(**context)
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip() + "\n"
