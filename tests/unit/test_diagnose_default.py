"""A backend package without its own `diagnose` still gets a doctor line: connecting is the check."""

from __future__ import annotations

import sys
import types

import pytest

from dtrun.backends import registry
from dtrun.config import Settings
from dtrun.errors import DtrunError


@pytest.fixture
def fake_backend(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("dtrun_fake_backend")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(registry.BACKENDS, "fake", module.__name__)
    return module


def test_a_backend_that_connects_is_ok(fake_backend: types.ModuleType) -> None:
    fake_backend.create = lambda settings, host: types.SimpleNamespace(host=host or "fake://cluster")  # type: ignore[attr-defined]
    checks = registry.diagnose_backend(Settings(store="s", backend="fake"))
    assert [(c.name, c.status, c.message) for c in checks] == [
        ("fake", "ok", "the fake backend answers at fake://cluster")]


def test_a_backend_that_cannot_connect_fails_with_its_own_words(fake_backend: types.ModuleType) -> None:
    def create(settings: object, host: str | None) -> object:
        raise DtrunError("no controller answers at fake://cluster", hint="start it")

    fake_backend.create = create  # type: ignore[attr-defined]
    [check] = registry.diagnose_backend(Settings(store="s", backend="fake"))
    assert (check.status, check.message, check.fix) == ("FAIL", "no controller answers at fake://cluster", "start it")


def test_an_unknown_backend_is_one_failed_check() -> None:
    [check] = registry.diagnose_backend(Settings(store="s", backend="nomad"))
    assert check.status == "FAIL" and check.message == "unknown backend 'nomad'"


def test_a_dead_socket_is_reported_by_its_reason() -> None:
    from dtrun.backends.docker.connection import _reason

    text = "Error while fetching server API version: ('Connection aborted.', FileNotFoundError(2, " \
           "'No such file or directory'))"
    assert _reason(Exception(text)) == "no such file or directory"


def test_a_backend_that_pulls_its_images_asks_for_a_registry(fake_backend: types.ModuleType) -> None:
    from dtrun.doctor import check_registry

    settings = Settings(store="s", backend="fake")
    assert not registry.needs_registry(settings)
    fake_backend.NEEDS_REGISTRY = True  # type: ignore[attr-defined]
    assert registry.needs_registry(settings)
    check = check_registry(None, needed_by="fake")
    assert (check.status, check.message) == ("warn", "the fake backend runs images from a registry, and none was "
                                                     "checked")
    assert check_registry(None).status == "skip"
