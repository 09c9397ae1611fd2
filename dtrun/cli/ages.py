"""Ages on the command line: `--older-than 7d` in, `3d ago` out (shared by the prune commands)."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "": 86400}


def parse_age(text: str) -> float:
    """`30m`, `12h`, `7d`, `2w`, `0s` -> seconds; a bare number is days."""
    from dtrun.errors import DtrunError

    match = _DURATION.match(text)
    if not match:
        raise DtrunError(f"'{text}' is not a duration", hint="write e.g. 7d, 12h, 30m or 0s")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"
