"""`${{ ... }}` in workflow strings: variables, `run.args`, `run.name` and `secrets.NAME`.

The hosted dstack.ai of early 2022 wrote variables as `$name` (or `${name}`) instead, with three system
variables: `$variables_as_args` (every variable of the workflow's own section of variables.yaml as
`--name value`), `$run_name` and `$job_id`. Those forms are substituted too, but only for names the
workflow declares (and those three): any other `$NAME` is the shell's, left as written.

Variables and `run.*` are substituted while the plan is made, on the raw YAML values whose source
positions are still known, so an unknown name is reported at its file and line. Secrets are not: a
`${{ secrets.NAME }}` is kept in the planned job as it was written (normalised to
`${{ secrets.NAME }}`) and `resolve_secrets` replaces it when the job starts, so a secret's value
never reaches a plan, a cache key or a record.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field, replace
from typing import Any

from dtrun.errors import DtrunError, Position, SpecError
from dtrun.spec.errors import did_you_mean
from dtrun.spec.yamlpos import Document, PathKey, RawFloat
from dtrun.structs import struct

TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
#: A template, or a hosted-era `${name}` / `$name`.
_ANY = re.compile(r"\$\{\{(.*?)\}\}|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", re.DOTALL)
#: Hosted-era system variables: the job's id is known only in the job (the engine sets $DTRUN_JOB).
AS_ARGS, RUN_NAME, JOB_ID = "variables_as_args", "run_name", "job_id"
_SECRET = re.compile(r"^secrets\.([A-Za-z_][A-Za-z0-9_]*)$")
_SECRET_MARK = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

#: Properties whose values are never templated: they identify the workflow.
FIXED = ("name", "provider")
#: Lists in which an item that is exactly `${{ run.args }}` becomes the arguments, one item each.
SPLICE = ("args", "entrypoint")


def secret_marker(name: str) -> str:
    return "${{ secrets." + name + " }}"


@struct(frozen=True)
class Scope:
    """What `${{ ... }}` may name in one workflow."""

    variables: Mapping[str, str] = field(default_factory=dict)
    run_args: Sequence[str] = ()
    #: None while no run exists (validation, listing): `${{ run.name }}` is then kept as written.
    run_name: str | None = None
    #: The workflow's own variables (not the global ones), in order: what `$variables_as_args` passes.
    own: Sequence[str] = ()

    def names(self) -> list[str]:
        return [*self.variables, "run.args", "run.name", "secrets.NAME"]


def substitute(data: Any, scope: Scope, doc: Document, path: PathKey) -> tuple[Any, list[SpecError]]:
    """Substitute every template in the workflow mapping `data` (found at `path` of `doc`)."""
    errors: list[SpecError] = []

    def walk(value: Any, where: PathKey, splice: bool) -> Any:
        if isinstance(value, str):
            return _text(value, scope, doc, where, errors)
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if where == path and key in FIXED:
                    if isinstance(item, str) and TEMPLATE.search(item):
                        errors.append(SpecError(f"'{key}' cannot use ${{{{ ... }}}}",
                                                position=doc.position((*where, key)),
                                                hint=f"write the {key} literally"))
                    out[key] = item
                else:
                    out[key] = walk(item, (*where, key), where == path and key in SPLICE)
            return out
        if isinstance(value, list):
            items: list[Any] = []
            for index, item in enumerate(value):
                if splice and isinstance(item, str) and _is_run_args(item):
                    items.extend(scope.run_args)
                else:
                    items.append(walk(item, (*where, index), False))
            return items
        return value

    return walk(data, path, False), errors


def _is_run_args(text: str) -> bool:
    match = TEMPLATE.fullmatch(text.strip())
    return bool(match) and match is not None and match.group(1).strip() == "run.args"


def _text(text: str, scope: Scope, doc: Document, where: PathKey, errors: list[SpecError]) -> str:
    if "$" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        legacy = match.group(2) or match.group(3)
        if legacy is not None:
            return _legacy(legacy, scope, match.group(0))
        name = match.group(1).strip()
        if name in scope.variables:
            return str(scope.variables[name])
        if name == "run.args":
            return shlex.join(scope.run_args)
        if name == "run.name":
            return scope.run_name if scope.run_name is not None else "${{ run.name }}"
        secret = _SECRET.match(name)
        if secret:
            return secret_marker(secret.group(1))
        errors.append(_unknown(name, scope, doc, where, text, match.start()))
        return match.group(0)

    result = _ANY.sub(replace, text)
    rest = TEMPLATE.sub("", text)
    if "${{" in rest:
        errors.append(SpecError("unclosed '${{' (a template is written ${{ name }})",
                                position=_inner(doc, where, text, rest.index("${{")),
                                hint="close it with '}}'"))
    return result


def _legacy(name: str, scope: Scope, written: str) -> str:
    """`$name` of the hosted era: a declared variable, a system variable, else the shell's own."""
    if name in scope.variables:
        return str(scope.variables[name])
    if name == AS_ARGS:
        return " ".join(f"--{n} {shlex.quote(str(scope.variables[n]))}" for n in scope.own if n in scope.variables)
    if name == RUN_NAME and scope.run_name is not None:
        return scope.run_name
    if name == JOB_ID:
        return "${DTRUN_JOB}"
    return written


def _unknown(name: str, scope: Scope, doc: Document, where: PathKey, text: str, offset: int) -> SpecError:
    position = _inner(doc, where, text, offset)
    if not name:
        return SpecError("empty ${{ }}", position=position, hint=f"names you can use: {', '.join(scope.names())}")
    if name.startswith("secrets."):
        return SpecError(f"'{name}' is not a secret name", position=position,
                         hint="secret names are letters, digits and _, as in ${{ secrets.WANDB_API_KEY }}")
    if name.startswith("run."):
        return SpecError(f"unknown '${{{{ {name} }}}}'", position=position,
                         hint=did_you_mean(name, ["run.args", "run.name"]) + "run.args and run.name are defined")
    declared = ", ".join(scope.variables) or "none"
    return SpecError(f"unknown variable '{name}' in ${{{{ {name} }}}}", position=position,
                     hint=did_you_mean(name, scope.variables) +
                     f"variables of this workflow (from variables.yaml): {declared}; "
                     "also run.args, run.name, secrets.NAME")


def _inner(doc: Document, where: PathKey, text: str, offset: int) -> Position:
    """The position of character `offset` of a string value: exact for plain, quoted and `|` scalars."""
    start = doc.position(where)
    style = doc.styles.get(where, "?")
    lines = text.count("\n", 0, offset)
    if style == "|":
        column = offset - (text.rfind("\n", 0, offset) + 1)
        indent = doc.indents.get(where, 0)
        return replace(start, line=start.line + 1 + lines, column=indent + column + 1)
    if lines or style not in ("", "'", '"') or not start.line:
        return start
    return replace(start, column=start.column + offset + (1 if style else 0))


def references(values: Iterable[str]) -> list[str]:
    """The secret names that `${{ secrets.NAME }}` markers in `values` refer to, in order, once each."""
    seen: dict[str, None] = {}
    for value in values:
        for match in _SECRET_MARK.finditer(value):
            seen.setdefault(match.group(1), None)
    return list(seen)


def resolve_secrets(value: str, secrets: Mapping[str, str]) -> str:
    """Replace each `${{ secrets.NAME }}` in `value` by the secret's value (called when the job starts).

    A secret that is not in `secrets` is a `DtrunError` naming it: the job must not start with the
    marker text where a password was expected.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in secrets:
            raise DtrunError(f"secret '{name}' is not set",
                             hint=f"the workflow uses ${{{{ secrets.{name} }}}}: add the secret {name} to dtrun's "
                                  "secrets before running it")
        return secrets[name]

    return _SECRET_MARK.sub(replace, value)


def plain(value: Any) -> str:
    """A YAML scalar as the text it was written as (`1.0` stays "1.0"), for variables."""
    if isinstance(value, RawFloat):
        return value.raw
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
