import pytest

from dtrun.errors import SpecError
from dtrun.flows.inputs import check_inputs, env_name, input_env
from dtrun.flows.models import ActionManifest
from dtrun.flows.outputs import parse_output_file, parse_stdout_line

MANIFEST = ActionManifest.validate({
    "name": "t",
    "inputs": {"count": {"type": "integer", "required": True}, "rate": {"type": "float", "default": 0.5},
               "flag": {"type": "boolean", "default": False}, "items": {"type": "array", "default": []},
               "mode": {"type": "string", "options": ["a", "b"], "default": "a"}},
    "runs": {"using": "shell", "command": "true"},
})


def test_types_coerced_and_defaults_filled() -> None:
    values = check_inputs(MANIFEST, {"count": "7", "items": '[1, "x"]', "flag": "true"}, where="s")
    assert values == {"count": 7, "items": [1, "x"], "flag": True, "rate": 0.5, "mode": "a"}
    assert input_env(values, "s") == {"INPUT_COUNT": "7", "INPUT_ITEMS": '[1, "x"]', "INPUT_FLAG": "true",
                                      "INPUT_RATE": "0.5", "INPUT_MODE": "a"}


@pytest.mark.parametrize("given, message", [
    ({"count": "seven"}, "input 'count' must be an integer"),
    ({"count": 1, "rate": "fast"}, "input 'rate' must be a float"),
    ({"count": 1, "flag": "yes"}, "input 'flag' must be a boolean"),
    ({"count": 1, "items": "x"}, "input 'items' must be an array"),
    ({"count": 1, "mode": "c"}, "must be one of"),
    ({}, "needs the input 'count'"),
    ({"count": 1, "cout": 2}, "has no input 'cout'"),
])
def test_bad_inputs(given: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        check_inputs(MANIFEST, given, where="s")


def test_env_names_and_collisions() -> None:
    assert env_name("batch-size.v2") == "INPUT_BATCH_SIZE_V2"
    with pytest.raises(SpecError, match="both become INPUT_A_B"):
        input_env({"a-b": 1, "a.b": 2}, "s")


def test_outputs() -> None:
    assert parse_output_file("a=1\nb=x=y\n\nmulti<<EOF\nl1\nl2\nEOF\n") == {"a": "1", "b": "x=y", "multi": "l1\nl2"}
    assert parse_stdout_line('::acc::"0.9"') == ("acc", "0.9")
    assert parse_stdout_line("::cfg::{\"a\": 1}") == ("cfg", {"a": 1})
    assert parse_stdout_line("::n::3") == ("n", 3)  # datatorch.set_output keeps the JSON type
    assert parse_stdout_line("::t::not json") == ("t", "not json")
    assert parse_stdout_line("plain text") is None


def test_defaults_with_expressions_and_deprecation() -> None:
    from dtrun.flows.expressions import Scope

    manifest = ActionManifest.validate({
        "name": "t", "runs": {"using": "cmd", "command": "true"},
        "inputs": {"dir": {"default": "${{ directory.temp }}/x"},
                   "copy": {"type": "integer", "default": "${{ input.n }}"},
                   "n": {"type": "integer"}, "old": {"deprecationMessage": "use n"}, "l": {"type": "list"}}})
    warned: list[str] = []
    before = check_inputs(manifest, {"n": 2}, where="s", warn=warned.append)
    assert before == {"n": 2} and not warned  # no scope yet: defaults with ${{ }} wait for the step
    scope = Scope(context={"directory": {"temp": "/tmp"}})
    values = check_inputs(manifest, {"n": 2, "old": "v", "l": "[1]"}, where="s", scope=scope, warn=warned.append)
    assert values == {"n": 2, "old": "v", "l": [1], "dir": "/tmp/x", "copy": 2}
    assert warned == ["s: input 'old' of action 't' is deprecated: use n"]
