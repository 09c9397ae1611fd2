"""dtrun's own validation of YAML data into frozen models (`dtrun.spec.typed`): what each type hint takes,
where each problem is reported, and that all problems of a file come at once."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import pytest

from dtrun.spec.typed import (
    After,
    Alias,
    Before,
    Ge,
    Gt,
    MinLen,
    Model,
    Problem,
    ValidationError,
    dump,
    json_schema,
)


@dataclass(frozen=True, kw_only=True)
class Inner(Model):
    """A nested model."""

    count: Annotated[int, Ge(0)] = 1
    label: str | None = None

    @classmethod
    def prepare(cls, value: Any) -> Any:
        return {"count": value} if isinstance(value, int) and not isinstance(value, bool) else value


def _no_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is blank")
    return value


@dataclass(frozen=True, kw_only=True)
class Outer(Model):
    name: Annotated[str, After(_no_blank)]
    kind: Literal["small", "large"] = "small"
    depends_on: Annotated[list[str], Alias("depends-on"), Before(lambda v: [v] if isinstance(v, str) else v)] = \
        field(default_factory=list)
    size: Annotated[float, Gt(0)] | None = None
    flag: bool = False
    node: Annotated[int, Ge(0)] | Literal["all"] = 0
    inner: Inner = field(default_factory=Inner)
    items: Annotated[list[Inner], MinLen(1)] | None = None
    table: dict[str, int] = field(default_factory=dict)
    anything: Any = None
    secret: str = field(default="", repr=False)

    def check(self) -> None:
        if self.kind == "large" and self.size is not None and self.size < 10:
            raise ValueError("a large one is at least 10")


def problems(data: Any) -> list[Problem]:
    with pytest.raises(ValidationError) as info:
        Outer.validate(data)
    return info.value.problems


def test_a_valid_mapping_becomes_a_frozen_model_with_defaults() -> None:
    model = Outer.validate({"name": "a", "depends-on": "b", "inner": 3, "items": [{"count": 2, "label": "x"}]})
    assert model == Outer(name="a", depends_on=["b"], inner=Inner(count=3), items=[Inner(count=2, label="x")])
    assert model.kind == "small" and model.table == {} and model.anything is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.name = "c"  # type: ignore[misc]
    assert "secret" not in repr(Outer.validate({"name": "a", "secret": "hunter2"}))


@pytest.mark.parametrize(("written", "field_name", "expected"), [
    ({"flag": "true"}, "flag", True), ({"flag": "off"}, "flag", False), ({"flag": 1}, "flag", True),
    ({"size": "2.5"}, "size", 2.5), ({"size": 3}, "size", 3.0),
    ({"flag": 1.0}, "flag", True), ({"flag": " no "}, "flag", False),
    ({"node": "2"}, "node", 2), ({"node": 4.0}, "node", 4), ({"node": "3.0"}, "node", 3),
    ({"node": "all"}, "node", "all"),
    ({"table": {"a": " 7 "}}, "table", {"a": 7}),
])
def test_text_written_by_a_variable_takes_the_fields_type(written: dict[str, Any], field_name: str,
                                                          expected: Any) -> None:
    """`${{ }}` always substitutes text: `nodes: ${{ n }}` must still be a number."""
    value = getattr(Outer.validate({"name": "a", **written}), field_name)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(("written", "loc", "message"), [
    ({"flag": "maybe"}, ("flag",), "expected true or false, got 'maybe'"),
    ({"flag": 2}, ("flag",), "expected true or false, got 2"),
    ({"node": 1.5}, ("node",), "expected a whole number or 'all', got 1.5"),
    ({"node": -1}, ("node",), "must be 0 or more, got -1"),
    ({"node": True}, ("node",), "expected a whole number or 'all', got true"),
    ({"size": 0}, ("size",), "must be more than 0, got 0"),
    ({"size": "nan"}, ("size",), "must be more than 0, got nan"),
    ({"node": "2.5"}, ("node",), "expected a whole number or 'all', got '2.5'"),
    ({"table": {"a": True}}, ("table", "a"), "expected a whole number, got true"),
    ({"name": 5}, ("name",), "expected text, got 5"),
    ({"name": " "}, ("name",), "is blank"),
    ({"kind": "huge"}, ("kind",), "expected one of 'small', 'large', got 'huge'"),
    ({"items": []}, ("items",), "needs at least 1 entry"),
    ({"items": "x"}, ("items",), "expected a list, got 'x'"),
    ({"inner": {"count": -2}}, ("inner", "count"), "must be 0 or more, got -2"),
    ({"table": {"a": "b"}}, ("table", "a"), "expected a whole number, got 'b'"),
    ({"kind": "large", "size": 2}, (), "a large one is at least 10"),
])
def test_each_problem_is_reported_at_its_value(written: dict[str, Any], loc: tuple[Any, ...], message: str) -> None:
    assert [(p.loc, p.message) for p in problems({"name": "a", **written})] == [(loc, message)]


def test_every_problem_is_reported_at_once() -> None:
    found = problems({"nme": "a", "flag": "x", "items": [{"count": 1}, {"count": "y"}, {"colour": 1}]})
    assert [(p.kind, p.loc) for p in found] == [
        ("unknown", ("nme",)), ("missing", ("name",)), ("type", ("flag",)), ("type", ("items", 1, "count")),
        ("unknown", ("items", 2, "colour"))]
    unknown = found[0]
    assert unknown.message == "unknown property 'nme'" and "name" in unknown.choices
    assert "depends-on" in unknown.choices and "depends_on" not in unknown.choices  # the key as written


def test_a_misspelt_choice_gets_a_suggestion() -> None:
    [problem] = problems({"name": "a", "kind": "lrage"})
    assert problem.hint == "did you mean 'large'?"


def test_a_property_given_under_its_name_and_its_alias_is_refused() -> None:
    assert Outer.validate({"name": "a", "depends_on": ["b"]}).depends_on == ["b"]
    [problem] = problems({"name": "a", "depends-on": ["b"], "depends_on": ["c"]})
    assert problem.message == "'depends-on' and 'depends_on' are the same property; keep 'depends-on'"


def test_a_check_runs_only_once_the_fields_are_valid() -> None:
    """`check` sees typed fields: a wrong field is reported alone, not with a confusing whole-model error."""
    assert [p.loc for p in problems({"name": "a", "kind": "large", "size": "big"})] == [("size",)]


def test_dump_gives_plain_data_by_name_or_by_key() -> None:
    model = Outer.validate({"name": "a", "depends-on": ["b"], "items": [{"count": 2}]})
    plain = dump(model)
    assert plain["depends_on"] == ["b"] and plain["items"] == [{"count": 2, "label": None}]
    keyed = dump(model, by_alias=True, exclude_none=True, exclude=frozenset({"inner"}))
    assert keyed["depends-on"] == ["b"] and "size" not in keyed and "inner" not in keyed
    assert keyed["items"] == [{"count": 2}]


def test_the_json_schema_follows_the_hints() -> None:
    schema = json_schema(Outer)
    props = schema["properties"]
    assert schema["required"] == ["name"] and schema["additionalProperties"] is False
    assert props["kind"] == {"enum": ["small", "large"], "type": "string"}
    assert props["node"] == {"anyOf": [{"type": "integer", "minimum": 0}, {"const": "all", "type": "string"}]}
    assert props["size"] == {"type": "number", "exclusiveMinimum": 0}
    assert props["items"] == {"type": "array", "items": {"$ref": "#/$defs/Inner"}, "minItems": 1}
    assert props["depends-on"] == {"type": "array", "items": {"type": "string"}}
    assert json_schema(Inner)["description"] == "A nested model."
    assert "description" not in schema  # no docstring of its own


def test_validating_a_workflow_imports_no_validation_library() -> None:
    code = ("import sys; from dtrun.spec.models import Workflow; "
            "Workflow.validate({'name': 'w', 'provider': 'bash', 'commands': 'true'}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core', 'attrs')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
