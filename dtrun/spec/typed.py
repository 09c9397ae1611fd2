"""Frozen dataclasses filled from data a person wrote (YAML), checked against their type hints.

The spec's models (workflows, flows, action manifests) are plain `@dataclass(frozen=True)` classes
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
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Mapping
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
        problems: list[Problem] = []
        model = _model(cls, data, (), problems)
        if problems:
            raise ValidationError(problems)
        return typing.cast(M, model)

    @classmethod
    def property_names(cls) -> list[str]:
        """The keys this model accepts, as written in files."""
        return sorted(f.key for f in _fields(cls))


class _Field:
    __slots__ = ("hint", "key", "name", "required")

    def __init__(self, name: str, key: str, hint: Any, required: bool) -> None:
        self.name = name
        #: the key in files: the alias when there is one, else the name
        self.key = key
        self.hint = hint
        self.required = required


_FIELDS: dict[type[Model], tuple[_Field, ...]] = {}


def _fields(cls: type[Model]) -> tuple[_Field, ...]:
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


# -- conversion ---------------------------------------------------------------------------------------

class _Fail:
    """The result of a conversion that recorded its problems."""


FAIL = _Fail()
_NONE = type(None)
_TRUE = {"true", "yes", "on", "y", "t", "1"}
_FALSE = {"false", "no", "off", "n", "f", "0"}


def _model(cls: type[Model], value: Any, loc: Loc, problems: list[Problem]) -> Any:
    try:
        value = cls.prepare(value)
    except ValueError as exc:
        problems.append(Problem(loc, str(exc)))
        return FAIL
    if not isinstance(value, Mapping):
        problems.append(Problem(loc, f"expected a mapping of properties, got {show(value)}", "type"))
        return FAIL
    fields = _fields(cls)
    by_key = {f.key: f for f in fields} | {f.name: f for f in fields}
    given: dict[str, tuple[Any, Any]] = {}
    before = len(problems)
    for key, item in value.items():
        field = by_key.get(key) if isinstance(key, str) else None
        if field is None:
            problems.append(Problem((*loc, key), f"unknown property '{key}'", "unknown",
                                    tuple(sorted(f.key for f in fields))))
        elif field.name in given:
            problems.append(Problem((*loc, key), f"'{given[field.name][0]}' and '{key}' are the same property; "
                                                 f"keep '{field.key}'"))
        else:
            given[field.name] = (key, item)
    values: dict[str, Any] = {}
    for field in fields:
        if field.name in given:
            key, item = given[field.name]
            converted = convert(field.hint, item, (*loc, key), problems)
            if converted is not FAIL:
                values[field.name] = converted
        elif field.required:
            problems.append(Problem((*loc, field.key), f"missing required property '{field.key}'", "missing"))
    if len(problems) > before:
        return FAIL
    model = cls(**values)
    try:
        model.check()
    except ValueError as exc:
        problems.append(Problem(loc, str(exc)))
        return FAIL
    return model


def convert(hint: Any, value: Any, loc: Loc, problems: list[Problem]) -> Any:
    """`value` as the type `hint` says, or FAIL with the problems added to `problems`."""
    origin = typing.get_origin(hint)
    if origin is Annotated:
        return _annotated(hint, value, loc, problems)
    if hint is Any:
        return value
    if isinstance(hint, type):
        if issubclass(hint, Model):
            return _model(hint, value, loc, problems)
        scalar = _SCALARS.get(hint)
        if scalar is not None:
            out = scalar(value)
            if out is FAIL:
                problems.append(Problem(loc, f"expected {describe(hint)}, got {show(value)}", "type"))
            return out
    if origin is Literal:
        return _literal(hint, value, loc, problems)
    if origin in (Union, types.UnionType):
        return _union(typing.get_args(hint), value, loc, problems)
    if origin is list:
        return _list(typing.get_args(hint)[0], value, loc, problems)
    if origin is dict:
        return _dict(typing.get_args(hint), value, loc, problems)
    raise TypeError(f"a model field has a type this module does not handle: {hint!r}")


def _annotated(hint: Any, value: Any, loc: Loc, problems: list[Problem]) -> Any:
    meta = hint.__metadata__
    try:
        for each in meta:
            if isinstance(each, Before):
                value = each.fn(value)
    except ValueError as exc:
        problems.append(Problem(loc, str(exc)))
        return FAIL
    out = convert(hint.__origin__, value, loc, problems)
    if out is FAIL:
        return FAIL
    try:
        for each in meta:
            if isinstance(each, After):
                out = each.fn(out)
            elif out is not None:
                _bound(each, out)
    except ValueError as exc:
        problems.append(Problem(loc, str(exc)))
        return FAIL
    return out


def _bound(rule: object, value: Any) -> None:
    if isinstance(rule, Ge) and not value >= rule.bound:  # `not >=`: NaN is refused too
        raise ValueError(f"must be {rule.bound} or more, got {show(value)}")
    if isinstance(rule, Gt) and not value > rule.bound:
        raise ValueError(f"must be more than {rule.bound}, got {show(value)}")
    if isinstance(rule, MinLen) and len(value) < rule.length:
        if isinstance(value, str):
            raise ValueError("must not be empty")
        raise ValueError(f"needs at least {rule.length} entr{'y' if rule.length == 1 else 'ies'}")


def _literal(hint: Any, value: Any, loc: Loc, problems: list[Problem]) -> Any:
    choices = typing.get_args(hint)
    if any(value == c and type(value) is type(c) for c in choices):
        return value
    hint_text = None
    if isinstance(value, str):
        import difflib

        close = difflib.get_close_matches(value, [str(c) for c in choices], n=1, cutoff=0.6)
        hint_text = f"did you mean '{close[0]}'?" if close else None
    problems.append(Problem(loc, f"expected {describe(hint)}, got {show(value)}", "type", hint=hint_text))
    return FAIL


def _union(arms: tuple[Any, ...], value: Any, loc: Loc, problems: list[Problem]) -> Any:
    if value is None and _NONE in arms:
        return None
    arms = tuple(a for a in arms if a is not _NONE)
    closest: list[Problem] | None = None
    for arm in sorted(arms, key=lambda a: not _same_kind(a, value)):
        trial: list[Problem] = []
        out = convert(arm, value, loc, trial)
        if not trial:
            return out
        if closest is None and not all(p.kind == "type" and p.loc == loc for p in trial):
            closest = trial  # the value had this arm's kind: what is wrong inside it says the most
    if closest is not None:
        problems.extend(closest)
    else:
        problems.append(Problem(loc, f"expected {describe(Union[arms])}, got {show(value)}", "type"))  # noqa: UP007
    return FAIL


def _same_kind(hint: Any, value: Any) -> bool:
    """Whether `value` is already of the kind `hint` takes (tried before the arms that would convert it)."""
    while typing.get_origin(hint) is Annotated:
        hint = hint.__origin__
    origin = typing.get_origin(hint)
    if origin is Literal:
        return any(type(value) is type(c) for c in typing.get_args(hint))
    if origin is list:
        return isinstance(value, list)
    if origin is dict or (isinstance(hint, type) and issubclass(hint, Model)):
        return isinstance(value, Mapping)
    if hint is bool or isinstance(value, bool):
        return hint is bool and isinstance(value, bool)
    return isinstance(hint, type) and isinstance(value, hint)


def _list(item: Any, value: Any, loc: Loc, problems: list[Problem]) -> Any:
    if not isinstance(value, (list, tuple)):
        problems.append(Problem(loc, f"expected a list, got {show(value)}", "type"))
        return FAIL
    out = [convert(item, each, (*loc, i), problems) for i, each in enumerate(value)]
    return FAIL if any(each is FAIL for each in out) else out


def _dict(args: tuple[Any, ...], value: Any, loc: Loc, problems: list[Problem]) -> Any:
    if not isinstance(value, Mapping):
        problems.append(Problem(loc, f"expected a mapping, got {show(value)}", "type"))
        return FAIL
    key_hint, item_hint = args
    out: dict[Any, Any] = {}
    failed = False
    for key, each in value.items():
        converted_key = convert(key_hint, key, (*loc, key), problems)
        converted = convert(item_hint, each, (*loc, key), problems)
        if converted_key is FAIL or converted is FAIL:
            failed = True
        else:
            out[converted_key] = converted
    return FAIL if failed else out


def _text(value: Any) -> Any:
    return value if isinstance(value, str) else FAIL


def _integer(value: Any) -> Any:
    if isinstance(value, bool):
        return FAIL
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else FAIL
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if digits.isdigit() and digits.isascii():
            return int(text)
        number = _number(text)  # "2.0", as a variable holding a float is substituted
        return int(number) if number is not FAIL and number.is_integer() else FAIL
    return FAIL


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        return FAIL
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return FAIL
    return FAIL


def _flag(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        return True if text in _TRUE else False if text in _FALSE else FAIL
    return FAIL


_SCALARS: dict[type, Callable[[Any], Any]] = {str: _text, int: _integer, float: _number, bool: _flag}


# -- words for messages -------------------------------------------------------------------------------

def describe(hint: Any) -> str:
    """What a type hint accepts, in a user's words ("a whole number", "one of 'a', 'b'")."""
    origin = typing.get_origin(hint)
    if origin is Annotated:
        return describe(hint.__origin__)
    if origin is Literal:
        choices = [f"'{c}'" for c in typing.get_args(hint)]
        return choices[0] if len(choices) == 1 else "one of " + ", ".join(choices)
    if origin in (Union, types.UnionType):
        words = list(dict.fromkeys(describe(a) for a in typing.get_args(hint) if a is not _NONE))
        return " or ".join(words)
    if origin is list:
        return "a list"
    if origin is dict or (isinstance(hint, type) and issubclass(hint, Model)):
        return "a mapping"
    return {str: "text", int: "a whole number", float: "a number", bool: "true or false"}.get(hint, "a value")


def show(value: Any) -> str:
    """A value as the user wrote it, for a message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, float) and value.is_integer() and not hasattr(value, "raw"):
        return str(int(value))  # `cpu: 0` was converted to 0.0; the user wrote 0
    if isinstance(value, (int, float)):
        return str(getattr(value, "raw", value))
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


# -- out of models ------------------------------------------------------------------------------------

def dump(value: Any, *, by_alias: bool = False, exclude_none: bool = False,
         exclude: frozenset[str] = frozenset()) -> Any:
    """A model (and the models, lists and mappings in it) as plain data; `exclude` drops top-level fields."""
    if isinstance(value, Model):
        out: dict[str, Any] = {}
        for field in _fields(type(value)):
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
    properties = {f.key: _schema(f.hint, ref) for f in _fields(model)}
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    required = [f.key for f in _fields(model) if f.required]
    if required:
        schema["required"] = required
    if model.__doc__ and not model.__doc__.startswith(model.__name__ + "("):  # not dataclass's own
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
        arms = [_schema(a, ref) for a in typing.get_args(hint) if a is not _NONE]
        return arms[0] if len(arms) == 1 else {"anyOf": arms}
    if origin is list:
        return {"type": "array", "items": _schema(typing.get_args(hint)[0], ref)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(typing.get_args(hint)[1], ref)}
    if isinstance(hint, type) and issubclass(hint, Model):
        return {"$ref": ref(hint)}
    kind = {str: "string", int: "integer", float: "number", bool: "boolean"}.get(hint)
    return {"type": kind} if kind else {}
