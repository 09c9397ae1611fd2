from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtrun.errors import DtrunError, SpecError
from dtrun.spec.yamlpos import Document, RawFloat, load_yaml


def test_positions_of_nested_values(tmp_path: Path) -> None:
    doc = load_yaml(tmp_path / "w.yaml", "workflows:\n  - name: train\n    provider: bash\n")
    assert doc.data == {"workflows": [{"name": "train", "provider": "bash"}]}
    assert (doc.position(("workflows", 0, "provider")).line, doc.position(("workflows", 0, "provider")).column) \
        == (3, 15)
    # a path that does not exist falls back to its nearest ancestor
    assert doc.position(("workflows", 0, "missing")).line == 2


def test_float_keeps_its_source_text(tmp_path: Path) -> None:
    doc = load_yaml(tmp_path / "w.yaml", "python: 3.10\n")
    value = doc.data["python"]
    assert isinstance(value, RawFloat) and value.raw == "3.10" and value == 3.1


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_yaml(tmp_path / "w.yaml", "workflows:\n  - name: a\n   provider: [bash\n")
    assert info.value.position is not None
    assert info.value.position.file == tmp_path / "w.yaml"
    assert info.value.position.line >= 3
    assert "YAML syntax error" in info.value.message


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="duplicate key 'name'") as info:
        load_yaml(tmp_path / "w.yaml", "name: a\nname: b\n")
    assert info.value.position and info.value.position.line == 2


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_loads_or_raises_our_error(text: str) -> None:
    try:
        doc = load_yaml(Path("fuzz.yaml"), text)
    except DtrunError as exc:
        assert exc.position is not None and exc.position.file == Path("fuzz.yaml")
    else:
        assert isinstance(doc, Document)
