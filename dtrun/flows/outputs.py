"""Step outputs: `key=value` lines in the file named by `$DTRUN_OUTPUT`, and the `::key::<json>` lines
that DataTorch actions print on stdout (`datatorch.set_output(k, v)`).

A `::k::<json>` value keeps its JSON type (a number stays a number in `steps.ID.outputs.k` and in the
`--json` summary), as DataTorch's agent kept it. A `key=value` line is text, unless the manifest gives
the output a `type` (`typed_outputs`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from dtrun.flows.models import ActionManifest

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


def parse_stdout_line(line: str) -> tuple[str, Any] | None:
    """`::accuracy::0.93` -> ("accuracy", 0.93): the JSON value; text that is not JSON stays text."""
    match = _STDOUT.match(line.rstrip("\r"))
    if not match:
        return None
    key, raw = match.group(1), match.group(2).strip()
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def _typed(kind: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if kind == "integer" and re.fullmatch(r"-?\d+", text):
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "boolean" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind in ("array", "list", "object"):
            decoded = json.loads(text)
            return decoded if isinstance(decoded, (list, dict)) else value
    except ValueError:
        return value
    return value


def typed_outputs(manifest: ActionManifest | None, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Text outputs converted to the type their manifest declares (`outputs.<id>.type`); a value that
    does not read as that type, and any undeclared output, is kept as it is."""
    out = dict(outputs)
    if manifest is None:
        return out
    for key, value in outputs.items():
        spec = manifest.outputs.get(key)
        if spec is not None and spec.type and spec.type != "string":
            out[key] = _typed(spec.type, value)
    return out


def mask_value(value: Any, secrets: Mapping[str, str]) -> Any:
    """An output with every secret replaced by `***`; a non-text value that holds one becomes masked text."""
    text = value if isinstance(value, str) else json.dumps(value)
    masked = text
    for secret in sorted((s for s in secrets.values() if s), key=len, reverse=True):
        masked = masked.replace(secret, "***")
    return value if masked == text else masked
