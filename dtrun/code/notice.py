"""Say once, not on every run, which large untracked files a project ships.

What was said is remembered per project under the user's data folder (beside the digest index), by
the set of paths: the notice comes back only when a new large untracked path appears.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from dtrun.code.manifest import LargeUntracked


def record_path(index_file: Path) -> Path:
    """Beside the project's digest index: `<key>.json` -> `<key>.noticed.json`."""
    return index_file.with_name(f"{index_file.stem}.noticed.json")


def first_notice(record: Path, notice: LargeUntracked | None) -> LargeUntracked | None:
    """`notice` the first time its paths are seen for this project; None after that (and for None)."""
    if notice is None:
        return None
    told: set[str] = set()
    with contextlib.suppress(OSError, ValueError, TypeError):
        told = set(json.loads(record.read_text()))
    paths = {path for path, _ in notice.paths}
    if paths <= told:
        return None
    with contextlib.suppress(OSError):
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(sorted(told | paths)))
    return notice
