"""Converting data a person wrote into the type a model field's hint names (see `dtrun.spec.typed`).

Each converter returns the value as the hint's type, or `FAIL` after adding what is wrong to `problems`
(with the value's path), so that one pass over a file reports every problem in it.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union

from dtrun.spec.typed import After, Before, Ge, Gt, Loc, MinLen, Model, Problem, model_fields

# -- conversion ---------------------------------------------------------------------------------------

class _Fail:
    """The result of a conversion that recorded its problems."""


FAIL = _Fail()
_NONE = type(None)
_TRUE = {"true", "yes", "on", "y", "t", "1"}
_FALSE = {"false", "no", "off", "n", "f", "0"}


def convert_model(cls: type[Model], value: Any, loc: Loc, problems: list[Problem]) -> Any:
    try:
        value = cls.prepare(value)
    except ValueError as exc:
        problems.append(Problem(loc, str(exc)))
        return FAIL
    if not isinstance(value, Mapping):
        problems.append(Problem(loc, f"expected a mapping of properties, got {show(value)}", "type"))
        return FAIL
    fields = model_fields(cls)
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
            return convert_model(hint, value, loc, problems)
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
        from dtrun.spec.errors import did_you_mean

        hint_text = did_you_mean(value, [str(c) for c in choices]).strip() or None
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
