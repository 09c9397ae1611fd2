"""Turning pydantic's validation errors into messages with a file position and a hint."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from dtrun.errors import Position, SpecError
from dtrun.spec.yamlpos import Document, PathKey


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


def field_names(model: type[BaseModel]) -> list[str]:
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _message(error: Any, model: type[BaseModel], loc: Sequence[str | int]) -> tuple[str, str | None]:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        owner = _owner_model(model, loc[:-1])
        choices = field_names(owner) if owner else []
        hint = did_you_mean(key, choices) + (f"valid properties: {', '.join(choices)}" if choices else "")
        return f"unknown property '{key}'", hint or None
    if kind == "missing":
        return f"missing required property '{loc[-1]}'", None
    text = str(error["msg"])
    if text.startswith("Value error, "):
        text = text[len("Value error, ") :]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    prefix = f"'{where}': " if where else ""
    return prefix + text, None


def _owner_model(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The nested model that the location `loc` points into (to list its valid properties)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None or isinstance(part, int):
            continue
        field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
        if field is None:  # a key of a mapping of models (`jobs.<id>`): stay on the model it maps to
            continue
        current = _model_in(field.annotation)
    return current


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found:
            return found
    return None


def _clean_loc(loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """Drop pydantic's union-branch labels (`function-before[...]`, `int`) from a location."""
    return tuple(p for p in loc if isinstance(p, int) or ("[" not in p and p not in {"int", "str", "list"}))


def validation_errors(
    exc: ValidationError, model: type[BaseModel], doc: Document, base: PathKey
) -> list[SpecError]:
    """One `SpecError` per pydantic error, positioned at the offending value in `doc`."""
    out: list[SpecError] = []
    seen: set[tuple[Any, ...]] = set()
    for error in exc.errors():
        loc = _clean_loc(error["loc"])
        # A missing property has no position of its own: point at the mapping that lacks it.
        position = doc.position((*base, *(loc[:-1] if error["type"] == "missing" else loc)))
        message, hint = _message(error, model, loc)
        if (position, message) in seen:
            continue
        seen.add((position, message))
        out.append(SpecError(message, position=position, hint=hint))
    return out


class SpecErrors(SpecError):
    """Several spec errors reported at once (`dtrun validate` shows them all)."""

    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = errors
        first = errors[0]
        super().__init__(first.message, position=first.position, hint=first.hint)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)



@dataclass(frozen=True)
class SpecWarning:
    """A property accepted without (all of) its meaning on a Docker host, or a workflow skipped because
    it is invalid. Returned by the loader, never printed by it: the CLI decides how to show it."""

    message: str
    position: Position | None = None
    #: The property it is about (`ssh`, `depends-on.repo`), None for a skipped workflow.
    prop: str | None = None
    #: The workflow it is about, None for one about a whole file.
    workflow: str | None = None

    def __str__(self) -> str:
        return f"{self.position}: {self.message}" if self.position else self.message
