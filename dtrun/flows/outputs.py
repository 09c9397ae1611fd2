"""Step outputs: `key=value` lines in the file named by `$DTRUN_OUTPUT`, and the `::key::<json>` lines
that DataTorch actions print on stdout."""

from __future__ import annotations

import json
import re

_STDOUT = re.compile(r"^::([A-Za-z_][A-Za-z0-9_-]*)::(.*)$")


def parse_output_file(text: str) -> dict[str, str]:
    """`key=value` per line; `key<<EOF` ... `EOF` for values that span lines."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        heredoc = re.match(r"^([A-Za-z_][A-Za-z0-9_-]*)<<(\S+)$", line)
        if heredoc:
            key, marker = heredoc.groups()
            body: list[str] = []
            while i < len(lines) and lines[i] != marker:
                body.append(lines[i])
                i += 1
            i += 1
            out[key] = "\n".join(body)
            continue
        key, sep, value = line.partition("=")
        if sep and key.strip():
            out[key.strip()] = value
    return out


def parse_stdout_line(line: str) -> tuple[str, str] | None:
    """`::accuracy::0.93` -> ("accuracy", "0.93"); JSON strings are unquoted, other JSON kept as text."""
    match = _STDOUT.match(line.rstrip("\r"))
    if not match:
        return None
    key, raw = match.group(1), match.group(2).strip()
    try:
        value = json.loads(raw)
    except ValueError:
        return key, raw
    return key, value if isinstance(value, str) else raw
