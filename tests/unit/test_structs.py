"""`dtrun.structs.struct` behaves as `dataclasses.dataclass` does for everything dtrun uses of it, while
compiling only `__init__` when a class is defined."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest

from dtrun.structs import struct


@struct(frozen=True, kw_only=True)
class Frozen:
    name: str
    tags: list[str] = field(default_factory=list)
    secret: str = field(default="", repr=False)


@dataclass(frozen=True, kw_only=True)
class FrozenReference:
    name: str
    tags: list[str] = field(default_factory=list)
    secret: str = field(default="", repr=False)


@struct
class Mutable:
    count: int
    label: str | None = None

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("negative")


@struct(frozen=True)
class Point:
    x: int
    y: int = 0


@struct(eq=False)
class Identity:
    value: int


def test_a_struct_is_a_dataclass_to_the_dataclasses_module() -> None:
    made = Frozen(name="a", tags=["x"], secret="s")
    assert dataclasses.is_dataclass(made)
    assert [f.name for f in dataclasses.fields(made)] == ["name", "tags", "secret"]
    assert dataclasses.asdict(made) == {"name": "a", "tags": ["x"], "secret": "s"}
    changed = dataclasses.replace(made, name="b")
    assert changed == Frozen(name="b", tags=["x"], secret="s") and made.name == "a"


@pytest.mark.parametrize(("ours", "reference"), [(Frozen, FrozenReference)])
def test_repr_equality_and_hash_match_a_dataclass(ours: Any, reference: Any) -> None:
    a, b = ours(name="a", tags=["x"]), ours(name="a", tags=["x"])
    assert repr(a) == repr(reference(name="a", tags=["x"])).replace("FrozenReference", "Frozen")
    assert "secret" not in repr(a)
    assert a == b and a != ours(name="z") and a != reference(name="a", tags=["x"])
    assert hash(Point(1, 2)) == hash(Point(1, 2)) and {Point(1, 2), Point(1, 2)} == {Point(1, 2)}
    with pytest.raises(TypeError):
        hash(a)  # a list field is unhashable, as in a frozen dataclass


def test_a_frozen_struct_refuses_to_change_or_lose_a_field() -> None:
    point = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del point.y  # type: ignore[misc]
    assert (point.x, point.y) == (1, 0)


def test_a_mutable_struct_is_unhashable_and_runs_post_init() -> None:
    item = Mutable(3)
    item.count = 4
    assert item == Mutable(4) and repr(item) == "Mutable(count=4, label=None)"
    with pytest.raises(TypeError):
        hash(item)
    with pytest.raises(ValueError, match="negative"):
        Mutable(-1)
    with pytest.raises(TypeError):
        Frozen("positional")  # type: ignore[misc]  # kw_only


def test_eq_false_keeps_identity() -> None:
    assert Identity(1) != Identity(1) and hash(Identity(1)) != 0


def test_copies_and_pickles_round_trip() -> None:
    point, frozen = Point(1, 2), Frozen(name="n", tags=["t"])
    assert copy.deepcopy(point) == point and copy.copy(frozen) == frozen
    assert pickle.loads(pickle.dumps(point)) == point


def test_only_init_is_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of `struct`: one generated function per class, not five or six."""
    if not hasattr(dataclasses, "_create_fn"):
        pytest.skip("this Python's dataclasses build their methods another way")
    made: list[str] = []
    original = dataclasses._create_fn

    def counting(name: str, *args: Any, **kwargs: Any) -> Any:
        made.append(name)
        return original(name, *args, **kwargs)

    monkeypatch.setattr(dataclasses, "_create_fn", counting)

    @struct(frozen=True)
    class Probe:
        value: int

    assert made == ["__init__"]
    made.clear()

    @dataclass(frozen=True)
    class Reference:
        value: int

    assert len(made) >= 5  # __init__, __repr__, __eq__, __setattr__, __delattr__, __hash__
