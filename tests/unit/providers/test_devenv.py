"""The dev-environment URLs and the per-job token file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dtrun.providers import devenv


def test_urls_are_the_published_address_with_the_token() -> None:
    ports = [("PORT_0", "127.0.0.1:41001"), ("PORT_1", "127.0.0.1:41002")]
    lab = devenv.announce(devenv.app_env("lab", 1), ports, "tok")
    assert lab == ["  lab: http://127.0.0.1:41002/lab?token=tok"]
    notebook = devenv.announce(devenv.app_env("notebook", 0), ports, "tok")
    assert notebook == ["  notebook: http://127.0.0.1:41001/tree?token=tok"]
    code = devenv.announce(devenv.app_env("code", 0), ports, "pw")
    assert code == ["  code: http://127.0.0.1:41001/", "  code password: pw"]


def test_no_url_for_other_jobs_or_unpublished_ports() -> None:
    assert devenv.announce({}, [("PORT_0", "127.0.0.1:1")], "t") == []
    assert devenv.announce(devenv.app_env("lab", 3), [("PORT_0", "127.0.0.1:1")], "t") == []


def test_tokens_are_new_each_time_and_url_safe() -> None:
    a, b = devenv.new_token(), devenv.new_token()
    assert a != b and len(a) >= 32
    assert all(c.isalnum() or c in "-_" for c in a)


def test_token_file_is_readable_by_its_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path))
    path = devenv.save_token("job1", "s3cret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert devenv.load_token("job1") == "s3cret" and devenv.load_token("other") is None
