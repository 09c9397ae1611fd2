"""The code volume's retention policy (`dtrun.code.retention`) and its setting, `code_trees`."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtrun.code.retention import DEFAULT_TREES, due, kept_trees, prune_every
from dtrun.errors import DtrunError


def test_the_setting_is_a_number_of_trees_with_a_default() -> None:
    assert kept_trees(None) == kept_trees("") == DEFAULT_TREES == 8
    assert kept_trees("3") == 3 and kept_trees(" 0 ") == 0
    for bad in ("many", "-1", "2.5"):
        with pytest.raises(DtrunError, match="code_trees must be a whole number") as caught:
            kept_trees(bad)
        assert caught.value.hint == f"dtrun config set code_trees {DEFAULT_TREES}"


def test_a_prune_comes_once_per_bound_of_trees_landed_and_never_when_off() -> None:
    assert [prune_every(k) for k in (0, 1, 2, 8)] == [0, 1, 2, 8]
    assert not due(8, 7) and due(8, 8) and due(8, 9)
    assert due(1, 1) and not due(2, 1) and not due(2, 0)
    assert not any(due(0, landed) for landed in range(100))  # 0: only `dtrun volumes prune` removes trees


def test_the_setting_comes_from_the_file_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dtrun.config import KEYS, load_settings, write_file_setting

    monkeypatch.setenv("DTRUN_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.delenv("DTRUN_CODE_TREES", raising=False)
    assert "code_trees" in KEYS and load_settings().code_trees is None
    write_file_setting("code_trees", "4")
    assert kept_trees(load_settings().code_trees) == 4
    monkeypatch.setenv("DTRUN_CODE_TREES", "0")
    assert kept_trees(load_settings().code_trees) == 0
