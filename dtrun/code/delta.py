"""What changed between the manifest a code volume holds and the one a run needs.

Pure: two manifests in, a `Delta` out. Renames are recognised by content (a deleted path whose bytes
and mode reappear under an added path), so moving a 1 GB file sends nothing. Only `needed` objects
travel; everything else is a hard link to content the volume already has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import field

from dtrun.code.manifest import Entry, Manifest
from dtrun.structs import struct


@struct(frozen=True)
class Delta:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old path, new path)
    #: object name -> one entry whose file holds those bytes: what must be sent
    needed: dict[str, Entry] = field(default_factory=dict)

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.changed or self.deleted or self.renamed)

    @property
    def bytes_to_send(self) -> int:
        return sum(e.size for e in self.needed.values())


def held_objects(manifest: Manifest | None) -> set[str]:
    if manifest is None:
        return set()
    return {e.object_name for e in manifest.entries.values() if e.link is None}


def compute_delta(old: Manifest | None, new: Manifest, held: Iterable[str] | None = None) -> Delta:
    """`old`: what the volume's latest tree holds (None: an empty volume). `held`: every object the
    volume has, when known beyond `old` (earlier trees); by default the objects of `old`."""
    have = set(held) if held is not None else held_objects(old)
    return _delta(old.entries if old is not None else {}, new.entries, lambda e: e.object_name in have)


#: What `Manifest.json_text` writes around its rows, and between two rows. A `"` inside a JSON string is
#: always escaped, so `],["` occurs inside a row only where a path or a link target ends in `],[` (its
#: closing quote follows). Splitting there cuts that row in pieces that are not rows: the same pieces in
#: both texts while the row is unchanged (they cancel), and pieces no JSON parser takes when it changed
#: (the first ends inside a string), which sends the delta to a whole parse.
ROWS_START = '{"version":1,"entries":['
ROWS_END = "]}"
ROW_SEPARATOR = '],["'
#: Beyond this many new objects, asking the old text about each (a search of it) costs more than parsing it.
MAX_SEARCHES = 32


def rows_of(manifest_json: str) -> list[str] | None:
    """The rows of a manifest's JSON as `Manifest.json_text` writes it, each row's text less its brackets
    and its path's opening quote; None for any other text."""
    if not (manifest_json.startswith(ROWS_START) and manifest_json.endswith(ROWS_END)):
        return None
    body = manifest_json[len(ROWS_START):-len(ROWS_END)]
    if not body:
        return []
    if not (body.startswith('["') and body.endswith("]")):
        return None
    return body[2:-1].split(ROW_SEPARATOR)


def differing_rows(old_json: str, new_json: str) -> tuple[list[str], list[str]] | None:
    """`rows_of` both texts, less the rows before the first difference and after the last: the texts are
    compared by halves (C-speed compares of slices), and only the stretch between is split. Its ends
    sit at separators, where splitting the whole text splits too. None for a text `rows_of` refuses."""
    first = len(ROWS_START) + 2  # the first row's text, after its `["`
    tail = len("]" + ROWS_END)  # after the last row's text
    if min(len(old_json), len(new_json)) < first + tail:  # no rows in one of them
        old_rows, new_rows = rows_of(old_json), rows_of(new_json)
        return None if old_rows is None or new_rows is None else (old_rows, new_rows)
    if not (old_json.startswith(ROWS_START + '["') and new_json.startswith(ROWS_START + '["')
            and old_json.endswith("]" + ROWS_END) and new_json.endswith("]" + ROWS_END)):
        return None
    same_start = _common_prefix(old_json, new_json)
    same_end = _common_suffix(old_json, new_json, min(len(old_json), len(new_json)) - same_start)
    cut = old_json.rfind(ROW_SEPARATOR, 0, same_start)
    start = max(first, cut + len(ROW_SEPARATOR)) if cut >= 0 else first
    cut = old_json.find(ROW_SEPARATOR, len(old_json) - same_end)
    old_end = cut if cut >= 0 else len(old_json) - tail
    new_end = old_end + len(new_json) - len(old_json) if cut >= 0 else len(new_json) - tail
    if start > old_end or start > new_end:
        return None
    return old_json[start:old_end].split(ROW_SEPARATOR), new_json[start:new_end].split(ROW_SEPARATOR)


def _common_prefix(a: str, b: str) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # a[:lo] == b[:lo]; each step compares only the half not yet known
        mid = (lo + hi + 1) // 2
        if a.startswith(b[lo:mid], lo):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a.endswith(b[len(b) - mid:len(b) - lo], 0, len(a) - lo):
            lo = mid
        else:
            hi = mid - 1
    return lo


def delta_from_json(old_json: str, new: Manifest) -> Delta | None:
    """`compute_delta` from the JSON text of the old manifest, as this client wrote it for its last put:
    only the rows that differ between the two texts are parsed (a one-file change in a 10,000-file tree
    parses two rows, not 10,000). None when the text is not one `Manifest.json_text` would write, or
    when so much changed that parsing the old manifest whole is cheaper (the caller does that)."""
    import json

    rows = differing_rows(old_json, new.json_text)
    if rows is None:
        return None
    kept = set(rows[0])
    came = [row for row in rows[1] if row not in kept]
    gone = kept.difference(rows[1])
    try:
        parsed = [json.loads(f'["{row}]') for row in (*gone, *came)]
        before = {row[0]: _entry(row) for row in parsed[:len(gone)]}
        after = {row[0]: _entry(row) for row in parsed[len(gone):]}
    except (ValueError, TypeError):
        return None
    if len(after) > MAX_SEARCHES:
        return None

    def held(e: Entry) -> bool:
        """Whether a row of the old text holds this object (digest and mode) as a regular file: such a row
        ends `,mode,size,"digest",null]`. The `"` before the digest opens a string (a closing one is
        followed by `,` or `]`, never a hex digit), so the fields before it lie outside any string."""
        tail = f',"{e.digest}",null]'
        mode = f",{e.mode},"
        at = old_json.find(tail)
        while at >= 0:
            size_at = old_json.rfind(",", 0, at)
            if old_json.startswith(mode, old_json.rfind(",", 0, size_at)):
                return True
            at = old_json.find(tail, at + 1)
        return False

    return _delta(before, after, held)


def _entry(row: list[object]) -> Entry:
    path, mode, size, digest, link = row
    if not (type(path) is str and type(mode) is int and type(size) is int and type(digest) is str
            and (link is None or type(link) is str)):
        raise ValueError(f"not a code manifest row: {row!r}")
    return Entry(path, mode, size, digest, link)


def _delta(before: dict[str, Entry], after: dict[str, Entry], held: Callable[[Entry], bool]) -> Delta:
    """The delta between two trees given the entries where they differ (or whole): `held` says whether
    the volume has an object already."""
    added = sorted(p for p in after if p not in before)
    deleted = sorted(p for p in before if p not in after)
    changed = sorted(p for p, e in after.items() if p in before and before[p] != e)
    gone_by_content: dict[tuple[str, int, str | None], list[str]] = {}
    for path in deleted:
        e = before[path]
        gone_by_content.setdefault((e.digest, e.mode, e.link), []).append(path)
    renamed: list[tuple[str, str]] = []
    for path in added:
        e = after[path]
        candidates = gone_by_content.get((e.digest, e.mode, e.link))
        if candidates:
            renamed.append((candidates.pop(0), path))
    moved_from = {old_path for old_path, _ in renamed}
    moved_to = {new_path for _, new_path in renamed}
    needed: dict[str, Entry] = {}
    for path in (*added, *changed):
        e = after[path]
        if e.link is None and e.object_name not in needed and not held(e):
            needed[e.object_name] = e
    return Delta(added=[p for p in added if p not in moved_to], changed=changed,
                 deleted=[p for p in deleted if p not in moved_from], renamed=renamed, needed=needed)
