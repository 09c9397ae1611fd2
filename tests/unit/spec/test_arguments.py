"""`dtrun run WORKFLOW ...` arguments: variables, --help, and the rest for ${{ run.args }}."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtrun.errors import DtrunError, Position
from dtrun.spec.arguments import parse_run_arguments, variables_help
from dtrun.spec.variables import Variable

NAMES = ["batch-size", "models_dir", "lr"]


@pytest.mark.parametrize(("tokens", "variables", "args", "wants_help"), [
    (["--batch-size", "32"], {"batch-size": "32"}, [], False),
    (["--batch-size=32", "--lr", "0.1"], {"batch-size": "32", "lr": "0.1"}, [], False),
    (["--batch_size", "1", "--models-dir", "m"], {"batch-size": "1", "models_dir": "m"}, [], False),
    (["-l", "Hello, world!"], {}, ["-l", "Hello, world!"], False),
    (["--other", "x", "--lr", "2", "pos"], {"lr": "2"}, ["--other", "x", "pos"], False),
    (["--help"], {}, [], True),
    (["-h", "--lr", "1"], {"lr": "1"}, [], True),
    (["--", "x"], {}, ["--", "x"], False),
])
def test_parse(tokens: list[str], variables: dict[str, str], args: list[str], wants_help: bool) -> None:
    parsed = parse_run_arguments(tokens, NAMES)
    assert (parsed.variables, parsed.args, parsed.help) == (variables, args, wants_help)


def test_everything_after_double_dash_is_an_argument() -> None:
    parsed = parse_run_arguments(["--lr", "1", "--help", "--batch-size", "2"], NAMES, verbatim=3)
    assert (parsed.variables, parsed.args, parsed.help) == ({"lr": "1"}, ["--help", "--batch-size", "2"], False)


def test_a_variable_flag_needs_a_value() -> None:
    with pytest.raises(DtrunError, match="variable --lr needs a value"):
        parse_run_arguments(["--lr"], NAMES)


def test_help_lists_variables_with_defaults_in_seed_003_form() -> None:
    where = Position(Path("v.yaml"), 1, 1)
    text = variables_help("download-model", "Downloads the model", {
        "model": Variable("model", "124M", where, where), "models_dir": Variable("models_dir", "model", where, where)})
    assert text.splitlines()[0] == "usage: dtrun run download-model [--model [MODEL]] [--models_dir [MODELS_DIR]] " \
                                   "[ARGS...]"
    assert "  --model        [MODEL]        default is 124M" in text
    assert "  --models_dir   [MODELS_DIR]   default is model" in text
    assert "Downloads the model" in text
