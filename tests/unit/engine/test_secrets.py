from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dtrun.errors import DtrunError, NotFound
from dtrun.secrets import SecretStore


def test_secrets_are_private_and_per_repository(tmp_path: Path) -> None:
    store = SecretStore("github.com/me/a", root=tmp_path / "secrets")
    assert store.add("TOKEN", "v1") is False
    assert store.add("TOKEN", "v2") is True
    store.add("OTHER", "x")
    assert store.names() == ["OTHER", "TOKEN"]
    assert store.values(["TOKEN"]) == {"TOKEN": "v2"}
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert SecretStore("github.com/me/b", root=tmp_path / "secrets").names() == []
    store.delete("OTHER")
    assert store.names() == ["TOKEN"]


def test_bad_names_missing_and_empty(tmp_path: Path) -> None:
    store = SecretStore("r", root=tmp_path)
    with pytest.raises(DtrunError, match="invalid secret name"):
        store.add("1-bad", "x")
    with pytest.raises(DtrunError, match="empty"):
        store.add("GOOD", "")
    with pytest.raises(NotFound, match="no secret named 'NOPE'"):
        store.delete("NOPE")
    with pytest.raises(NotFound, match="needs the secret MISSING"):
        store.values(["MISSING"], workflow="train")
