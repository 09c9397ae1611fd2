"""Frozen dataclasses filled from data a person wrote (YAML), checked against their type hints.

The spec's models (workflows, flows, action manifests) are frozen dataclasses (`dtrun.structs.struct`)
deriving from `Model`; `Model.validate(data)` builds one from parsed YAML and reports *every* problem
at once, each with the path of the offending value (`("resources", "gpu", "count")`), so that
`dtrun.spec.errors` can point at `file:line:col`. A validation library did this before; importing it
and building its schemas cost ~50 ms on every command, a quarter of a whole `dtrun run` (issue 19).

What a type hint accepts is what a person means when writing YAML by hand or through `${{ }}`:
- `str` takes text only (a number where text is meant is handled by the field's own `Before`, which
  keeps its source text: `python: 3.10`);
- `int`, `float` and `bool` also take their text (`"4"`, `"0.5"`, `"true"`), since a substituted
  variable is always text; `int` takes a float without a fraction; `bool` takes 0 and 1; a number
  never takes `true` (`ports: true` is a mistake, not one port);
- `Literal[...]` takes exactly one of its values; `list[T]`, `dict[str, T]` and nested models check
  each item; `X | Y` takes the first arm that fits, trying first the arms of the value's own kind.

Per-field behaviour is written in the hint with `Annotated`: `Before` (reshape the raw value), `After`
(check or reshape the converted value), `Ge`, `Gt`, `MinLen`, and `Alias` (the key as written in YAML,
`depends-on`; the field's own name is accepted too). A model reshapes its raw mapping in `prepare` and
checks itself, once its fields are valid, in `check`. Unknown properties are errors: a misspelt key
that is silently ignored costs a user a whole GPU run.

This module is what models are written with and what is read out of them (`dump`, `json_schema`); the
conversions themselves are in `dtrun.spec.coerce`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union

from dtrun.structs import struct

Loc = tuple[str | int, ...]


# -- what a field's hint may carry (plain classes: a dataclass costs ~0.2 ms to create at import) -------

class Alias:
    """The key as written in files (`depends-on`, `if`, `$schema`); the field's name is accepted too."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class Before:
    """Reshapes the raw value before its type is checked (`artifacts: data` -> `[data]`)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn


class After:
    """Checks (raising ValueError) or reshapes the value once it has its type."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn


class Ge:
    __slots__ = ("bound",)

    def __init__(self, bound: int | float) -> None:
        self.bound = bound


class Gt:
    __slots__ = ("bound",)

    def __init__(self, bound: int | float) -> None:
        self.bound = bound


class MinLen:
    """At least this many characters (text) or items (a list or mapping)."""

    __slots__ = ("length",)

    def __init__(self, length: int) -> None:
        self.length = length


# -- problems -----------------------------------------------------------------------------------------

@struct(frozen=True)
class Problem:
    """One thing wrong with the data, at `loc`.

    `kind`: "unknown" (a property the model lacks; `choices` are the ones it has), "missing" (a required
    property is absent), "type" (a value of the wrong kind) or "value" (the right kind, a wrong value).
    """

    loc: Loc
    message: str
    kind: str = "value"
    choices: tuple[str, ...] = ()
    hint: str | None = None


def format_loc(loc: Loc) -> str:
    """`("resources", "gpu", 0)` -> `resources.gpu[0]`."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


class ValidationError(ValueError):
    """Every problem found in one `Model.validate` call."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join((f"'{format_loc(p.loc)}': " if p.loc else "") + p.message for p in problems))


# -- models -------------------------------------------------------------------------------------------

M = TypeVar("M", bound="Model")


class Model:
    """Base of the spec's models; each subclass is a `@dataclass(frozen=True)`."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @classmethod
    def prepare(cls, value: Any) -> Any:
        """The raw value reshaped into this model's mapping (a shorthand form expanded, an older name
        renamed); raise ValueError for a value no form of this model can be."""
        return value

    def check(self) -> None:
        """Raise ValueError when valid fields do not make a valid whole (a step with `run` and `action`)."""

    @classmethod
    def validate(cls: type[M], data: Any) -> M:
        """A model made from `data`, or ValidationError listing every problem."""
        from dtrun.spec.coerce import convert_model

        problems: list[Problem] = []
        model = convert_model(cls, data, (), problems)
        if problems:
            raise ValidationError(problems)
        return typing.cast(M, model)



class _Field:
    __slots__ = ("hint", "key", "name", "required")

    def __init__(self, name: str, key: str, hint: Any, required: bool) -> None:
        self.name = name
        #: the key in files: the alias when there is one, else the name
        self.key = key
        self.hint = hint
        self.required = required


_FIELDS: dict[type[Model], tuple[_Field, ...]] = {}


def model_fields(cls: type[Model]) -> tuple[_Field, ...]:
    """The model's fields with their resolved hints (worked out once per class, on first use)."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        found = tuple(
            _Field(f.name, _alias(hints[f.name]) or f.name, hints[f.name],
                   f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        _FIELDS[cls] = found
    return found


def _alias(hint: Any) -> str | None:
    if typing.get_origin(hint) is Annotated:
        return next((m.name for m in hint.__metadata__ if isinstance(m, Alias)), None)
    return None


# -- out of models ------------------------------------------------------------------------------------

def dump(value: Any, *, by_alias: bool = False, exclude_none: bool = False,
         exclude: frozenset[str] = frozenset()) -> Any:
    """A model (and the models, lists and mappings in it) as plain data; `exclude` drops top-level fields."""
    if isinstance(value, Model):
        out: dict[str, Any] = {}
        for field in model_fields(type(value)):
            if field.name in exclude:
                continue
            item = getattr(value, field.name)
            if item is None and exclude_none:
                continue
            out[field.key if by_alias else field.name] = dump(item, by_alias=by_alias, exclude_none=exclude_none)
        return out
    if isinstance(value, (list, tuple)):
        return [dump(v, by_alias=by_alias, exclude_none=exclude_none) for v in value]
    if isinstance(value, dict):
        return {k: dump(v, by_alias=by_alias, exclude_none=exclude_none) for k, v in value.items()}
    return value


def json_schema(model: type[Model], ref: Callable[[type[Model]], str] = lambda m: f"#/$defs/{m.__name__}"
                ) -> dict[str, Any]:
    """The JSON Schema of `model`'s mapping; nested models are `$ref`s made by `ref`."""
    properties = {f.key: _schema(f.hint, ref) for f in model_fields(model)}
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    required = [f.key for f in model_fields(model) if f.required]
    if required:
        schema["required"] = required
    if model.__doc__ and model.__doc__ != model.__name__ and not model.__doc__.startswith(model.__name__ + "("):
        import inspect  # not dataclass's or struct's stand-in docstring

        schema["description"] = inspect.cleandoc(model.__doc__)
    return schema


def _schema(hint: Any, ref: Callable[[type[Model]], str]) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        out = _schema(hint.__origin__, ref)
        for rule in hint.__metadata__:
            if isinstance(rule, Ge):
                out["minimum"] = rule.bound
            elif isinstance(rule, Gt):
                out["exclusiveMinimum"] = rule.bound
            elif isinstance(rule, MinLen):
                out[{"string": "minLength", "array": "minItems"}.get(out.get("type", ""), "minProperties")] = \
                    rule.length
        return out
    if origin is Literal:
        choices = list(typing.get_args(hint))
        out = {"const": choices[0]} if len(choices) == 1 else {"enum": choices}
        return {**out, "type": "string"} if all(isinstance(c, str) for c in choices) else out
    if origin in (Union, types.UnionType):
        arms = [_schema(a, ref) for a in typing.get_args(hint) if a is not type(None)]
        return arms[0] if len(arms) == 1 else {"anyOf": arms}
    if origin is list:
        return {"type": "array", "items": _schema(typing.get_args(hint)[0], ref)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(typing.get_args(hint)[1], ref)}
    if isinstance(hint, type) and issubclass(hint, Model):
        return {"$ref": ref(hint)}
    kind = {str: "string", int: "integer", float: "number", bool: "boolean"}.get(hint)
    return {"type": kind} if kind else {}
