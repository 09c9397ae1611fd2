"""A build context as the docker CLI sends it: the folder as a tar, less what its `.dockerignore` names.

The legacy builder (`POST /build`) gets the context as a tar made by the client; it is the client that
applies `.dockerignore` (the daemon never sees the file's effect). The docker CLI does, so dtrun must
too: an ignored `data/` must not be uploaded to a remote daemon, an ignored secret must not reach a
`COPY . /app`. The rules are the CLI's (moby's `patternmatcher` and its archive walk), not git's:

- a line starting with `#` is a comment; others are trimmed, empty ones skipped; `!` makes an exception;
  a pattern is cleaned as a path (`a/./b/` -> `a/b`) and a leading `/` dropped (patterns are relative to
  the context's root whatever they start with);
- `*` and `?` do not cross `/`, `[...]` is a class, `\\` escapes, `**` matches any number of folders
  (none too); a pattern matches from the root only (`x` is `./x`, not `sub/x`);
- a path is ignored when the last pattern matching it, or one of its parent folders, is not an exception;
- an ignored folder is not walked unless an exception starts with its path (`!data/keep` keeps `data`
  walked: `data/keep` sent, nothing else in it);
- `.dockerignore` and the Dockerfile are sent even when matched (the CLI adds exceptions for them).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from dtrun.structs import struct

FILE = ".dockerignore"


@struct(frozen=True)
class Pattern:
    """One line of the file: its cleaned text (without `!`), whether it is an exception, its regex."""

    text: str
    exception: bool
    regex: re.Pattern[str]

    def matches(self, path: str) -> bool:
        return self.regex.match(path) is not None


def read_patterns(text: str) -> list[str]:
    """The file's patterns as the CLI reads them (an exception keeps its leading `!`)."""
    out: list[str] = []
    for number, raw in enumerate(text.splitlines()):
        line = raw.removeprefix("\ufeff") if number == 0 else raw
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        exception = line.startswith("!")
        if exception:
            line = line[1:].strip()
        if line:
            line = posixpath.normpath(line)
            if line.startswith("//"):  # normpath keeps two leading slashes, a Go path.Clean does not
                line = "/" + line.lstrip("/")
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        out.append(("!" if exception else "") + line)
    return out


def _regex(pattern: str) -> re.Pattern[str]:
    """The pattern as an anchored regex: filepath.Match's syntax plus `**`."""
    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            if pattern[i:i + 1] == "*":
                i += 1
                if pattern[i:i + 1] == "/":
                    i += 1
                out += ".*" if i >= len(pattern) else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch in ".+()|{}$":
            out += "\\" + ch
        elif ch == "\\":  # the next character as it is (a trailing one: itself)
            out += re.escape(pattern[i] if i < len(pattern) else ch)
            i += 1
        else:
            out += ch
    try:
        return re.compile(f"^{out}$", re.DOTALL)
    except re.error as exc:
        from dtrun.errors import DtrunError

        raise DtrunError(f"{FILE}: the pattern '{pattern}' is not valid ({exc})",
                         hint="patterns use *, ?, [a-z] and ** as the docker CLI reads them") from None


def compile_patterns(lines: list[str]) -> list[Pattern]:
    patterns = []
    for line in lines:
        exception = line.startswith("!")
        text = line[1:] if exception else line
        if exception and not text:
            from dtrun.errors import DtrunError

            raise DtrunError(f"{FILE}: '!' alone is not a pattern", hint="write `!PATH` to send PATH anyway")
        patterns.append(Pattern(text, exception, _regex(text)))
    return patterns


class Matcher:
    """Which paths of a context (relative, `/`-separated) the CLI leaves out."""

    def __init__(self, lines: list[str]) -> None:
        self.patterns = compile_patterns(lines)
        self.exceptions = [p.text for p in self.patterns if p.exception]

    def ignored(self, path: str) -> bool:
        parents = path.split("/")[:-1]
        matched = False
        for pattern in self.patterns:
            if pattern.exception != matched:
                continue  # an exception can only undo a match, a pattern only make one
            match = pattern.matches(path) or any(pattern.matches("/".join(parents[:n + 1]))
                                                 for n in range(len(parents)))
            if match:
                matched = not pattern.exception
        return matched

    def walk_into(self, folder: str) -> bool:
        """Whether an ignored folder must still be walked: an exception names something inside it."""
        return any((text + "/").startswith(folder + "/") for text in self.exceptions)


def context_matcher(folder: Path, dockerfile: str = "Dockerfile") -> Matcher | None:
    """The folder's `.dockerignore` (None when it has none), with the CLI's exceptions for the file
    itself and the Dockerfile added when the patterns match them."""
    try:
        text = (folder / FILE).read_text(errors="replace")
    except FileNotFoundError:
        return None
    lines = read_patterns(text)
    matcher = Matcher(lines)
    keep = [name for name in (FILE, posixpath.normpath(dockerfile)) if matcher.ignored(name)]
    return Matcher([*lines, *(f"!{name}" for name in keep)]) if keep else matcher


def context_paths(folder: Path, dockerfile: str = "Dockerfile") -> Iterator[str]:
    """The paths (relative, `/`-separated, parents first, in name order) the CLI would send of `folder`.
    Symbolic links are sent as links, never followed."""
    matcher = context_matcher(folder, dockerfile)
    for dirpath, dirnames, filenames in os.walk(folder):
        rel = os.path.relpath(dirpath, folder)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        dirnames.sort()
        entries = sorted([*((name, True) for name in dirnames), *((name, False) for name in filenames)])
        walked = []
        for name, is_dir in entries:
            path = prefix + name
            if matcher is not None and matcher.ignored(path):
                if is_dir and matcher.walk_into(path):
                    walked.append(name)  # walked for the exceptions inside, not sent itself
                continue
            if is_dir:
                walked.append(name)
            yield path
        dirnames[:] = walked


@contextlib.contextmanager
def build_context(folder: str, dockerfile: str = "Dockerfile") -> Iterator[IO[bytes]]:
    """The folder as the tar a build sends, in a temporary file (a context can be large: not in memory)."""
    root = Path(folder)
    with tempfile.TemporaryFile() as file:
        with tarfile.open(fileobj=file, mode="w") as tar:
            for path in context_paths(root, dockerfile):
                tar.add(str(root / path), arcname=path, recursive=False)
        file.seek(0)
        yield file
