import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtrun.flows.expressions import ExpressionError, Scope, evaluate, render, render_shell

SCOPE = Scope(inputs={"n": 3, "name": "x"}, steps={"fetch": {"path": "/w/data"}}, jobs={"prep": {"count": "42"}},
              secrets={"TOKEN": "s3cret"}, env={"MODE": "fast"})


def test_references() -> None:
    assert render("${{ steps.fetch.outputs.path }}/a", SCOPE) == "/w/data/a"
    assert render("${{ jobs.prep.outputs.count }}", SCOPE) == "42"
    assert render("${{ inputs.n }}", SCOPE) == 3  # a whole expression keeps its type
    assert render({"k": ["${{ env.MODE }}"]}, SCOPE) == {"k": ["fast"]}


def test_operators_and_functions() -> None:
    assert evaluate("jobs.prep.outputs.count == 42 && env.MODE != 'slow'", SCOPE) is True
    assert evaluate("!success() || always()", SCOPE) is True
    assert evaluate("failure()", Scope(status="failure")) is True


@pytest.mark.parametrize("text, message", [
    ("steps.nope.outputs.x", "no step 'nope'"),
    ("steps.fetch.outputs.size", "no output of step 'fetch' 'size'"),
    ("github.sha", "unknown reference"),
    ("env.MODE ==", "ends too early"),
    ("env.MODE = 'x'", "cannot read"),
])
def test_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        evaluate(text, SCOPE)


@given(st.text())
def test_shell_rendering_never_pastes_values(value: str) -> None:
    scope = Scope(steps={"a": {"v": value}}, inputs={"x": value})
    script, env = render_shell("echo ${{ steps.a.outputs.v }} ${{ inputs.x }}", scope,
                               input_env=lambda name: f"INPUT_{name.upper()}")
    assert script == 'echo "${DTRUN_EXPR_0}" "${INPUT_X}"'
    assert env == {"DTRUN_EXPR_0": value}
