"""Turning validation problems into messages with a file position and a hint."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from dtrun.errors import Position, SpecError
from dtrun.spec.typed import Problem, ValidationError, format_loc
from dtrun.spec.yamlpos import Document, PathKey
from dtrun.structs import struct


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


def _message(problem: Problem) -> tuple[str, str | None]:
    if problem.kind == "unknown":
        key = str(problem.loc[-1]) if problem.loc else "?"
        hint = did_you_mean(key, problem.choices) + (
            f"valid properties: {', '.join(problem.choices)}" if problem.choices else "")
        return problem.message, hint or None
    if problem.kind == "missing":
        return problem.message, problem.hint
    where = format_loc(problem.loc)
    return (f"'{where}': " if where else "") + problem.message, problem.hint


def validation_errors(exc: ValidationError, doc: Document, base: PathKey) -> list[SpecError]:
    """One `SpecError` per problem, positioned at the offending value in `doc`."""
    out: list[SpecError] = []
    seen: set[tuple[Any, ...]] = set()
    for problem in exc.problems:
        loc = problem.loc
        # A missing property has no position of its own: point at the mapping that lacks it.
        position = doc.position((*base, *(loc[:-1] if problem.kind == "missing" else loc)))
        message, hint = _message(problem)
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



@struct(frozen=True)
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
