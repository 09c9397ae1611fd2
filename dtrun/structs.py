"""`@struct`: a dataclass that is quick to define, for the classes every command loads.

`dataclasses.dataclass` writes each method it adds (`__init__`, `__repr__`, `__eq__`, `__hash__`,
`__setattr__`, `__delattr__`) as source text and compiles it when the class is defined. That is about
0.4 ms per class; the ~60 dataclasses a `dtrun run` loads before its job's container is created cost
25 ms of a 0.4 s run (issue 19). `struct` lets `dataclasses` collect the fields and write `__init__`
(the one method whose speed matters: instances are made often) and adds the others as shared functions
that read the field names from the class: nothing more is compiled.

The result is a dataclass to everything that asks (`dataclasses.fields`, `replace`, `asdict`,
`is_dataclass`, type checkers through `dataclass_transform`), with the same equality, hashing and repr.
One difference: a frozen struct refuses to change a field, but not to gain an attribute that is not one
(a frozen dataclass refuses both; nothing here adds attributes to its records).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:  # type checkers only (the `test` extra): dtrun never imports typing_extensions when it runs
    from typing_extensions import dataclass_transform
else:
    try:
        from typing import dataclass_transform
    except ImportError:  # Python 3.10: the marker only matters to type checkers
        def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
            return lambda decorated: decorated

T = TypeVar("T")


@overload
def struct(cls: type[T], /) -> type[T]: ...


@overload
def struct(*, frozen: bool = False, kw_only: bool = False, eq: bool = True,
           order: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
def struct(cls: type[T] | None = None, /, *, frozen: bool = False, kw_only: bool = False, eq: bool = True,
           order: bool = False) -> type[T] | Callable[[type[T]], type[T]]:
    """Make `cls` a dataclass (`@struct` or `@struct(frozen=True, kw_only=True)`)."""
    if order:
        raise TypeError("struct has no ordering; use dataclasses.dataclass(order=True)")

    def make(cls: type[T]) -> type[T]:
        if cls.__doc__ is None:
            cls.__doc__ = cls.__name__  # dataclass would work out a signature for it (inspect: slow)
        # kw_only only when asked: the in-job agent imports records made with `struct` on Pythons before 3.10
        options = {"kw_only": True} if kw_only else {}
        made: Any = dataclasses.dataclass(cls, repr=False, eq=False, **options)  # type: ignore[call-overload]
        fields = tuple(f.name for f in dataclasses.fields(made))
        made._struct_fields = fields
        made._struct_repr = tuple(f.name for f in dataclasses.fields(made) if f.repr)
        if "__repr__" not in cls.__dict__:
            made.__repr__ = _repr
        if eq and "__eq__" not in cls.__dict__:
            made.__eq__ = _eq
            # as dataclasses do: a frozen class hashes its fields, a mutable one is unhashable
            if "__hash__" not in cls.__dict__ or cls.__dict__["__hash__"] is None:
                made.__hash__ = _hash if frozen else None
        if frozen:
            made.__setattr__ = _frozen_setattr
            made.__delattr__ = _frozen_delattr
        return made  # type: ignore[no-any-return]

    return make if cls is None else make(cls)


def _values(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, name) for name in obj._struct_fields)


def _repr(self: Any) -> str:
    inside = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._struct_repr)
    return f"{type(self).__qualname__}({inside})"


def _eq(self: Any, other: object) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    if name in self._struct_fields and name in self.__dict__:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field '{name}'")
    object.__setattr__(self, name, value)


def _frozen_delattr(self: Any, name: str) -> None:
    if name in self._struct_fields:
        raise dataclasses.FrozenInstanceError(f"cannot delete field '{name}'")
    object.__delattr__(self, name)
