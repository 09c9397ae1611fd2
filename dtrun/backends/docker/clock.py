"""The Docker daemon's clock: ages of containers are measured against it, never against the client's.

A client on a laptop whose clock is minutes off (or in another time zone without NTP) talks to a
daemon that stamps `Created` with its own clock; comparing the two would make a container look older or
younger than it is. So an age is the daemon's `SystemTime` (from `docker info`) minus the daemon's
`Created`, both parsed here with their time-zone offsets and nanoseconds.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$")


def parse_time(text: str) -> float:
    """An RFC 3339 time as Docker writes it (`2026-01-01T00:00:00.123456789Z`, or with an offset) ->
    epoch seconds. A time without an offset is UTC; text that is no such time is a ValueError."""
    match = _STAMP.match(text.strip())
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    whole, fraction, zone = match.groups()
    # fromisoformat, not strptime: the latter's first call imports _strptime and compiles its patterns (~2 ms
    # on the way to every job's container, for each image's `Created`)
    stamp = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        stamp -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return stamp.timestamp() + (int(fraction[:9].ljust(9, "0")) / 1e9 if fraction else 0.0)


def daemon_now(client: Any) -> float:
    """The daemon's current time (epoch seconds); the client's only when the daemon does not say it."""
    try:
        return parse_time(str(client.info()["SystemTime"]))
    except Exception:  # an old or odd daemon: nothing better to compare with
        return time.time()


def age(client: Any, created: str) -> float | None:
    """Seconds since `created` (a `Created` of this daemon) by the daemon's clock; None if unreadable."""
    try:
        return daemon_now(client) - parse_time(created)
    except ValueError:
        return None
