"""Backends by name: `backend: docker` in the config (the default) picks `dtrun.backends.docker`.

A backend is a package under `dtrun/backends/` with a `create(settings, host)` factory returning an
object that implements `dtrun.backends.base.Backend`. Adding one is a new package plus one line here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from dtrun.errors import DtrunError

if TYPE_CHECKING:
    from dtrun.backends.base import Backend, Check
    from dtrun.config import Settings

DEFAULT = "docker"

#: name -> the module whose `create(settings, host)` builds it (imported only when chosen).
BACKENDS: dict[str, str] = {
    "docker": "dtrun.backends.docker",
    "slurm": "dtrun.backends.slurm",
    "kubernetes": "dtrun.backends.kubernetes",
}


def create_backend(settings: Settings, host: str | None = None, name: str | None = None) -> Backend:
    """The one way dtrun builds a backend (the API's Session calls it; so does every command)."""
    chosen = name or getattr(settings, "backend", None) or DEFAULT
    module = BACKENDS.get(chosen)
    if module is None:
        raise DtrunError(f"unknown backend '{chosen}'",
                         hint=f"backends: {', '.join(sorted(BACKENDS))} (dtrun config set backend docker)")
    backend: Backend = importlib.import_module(module).create(settings, host)
    return backend


def needs_registry(settings: Settings, name: str | None = None) -> bool:
    """Whether the chosen backend runs images from a registry (its package sets `NEEDS_REGISTRY = True`:
    a cluster's nodes cannot use images built on the client's Docker host)."""
    module = BACKENDS.get(name or getattr(settings, "backend", None) or DEFAULT)
    return bool(module and getattr(importlib.import_module(module), "NEEDS_REGISTRY", False))


def diagnose_backend(settings: Settings, host: str | None = None, name: str | None = None) -> list[Check]:
    """What the chosen backend needs of this machine, for `dtrun doctor`, as `Check`s.

    A backend package says it in a module-level `diagnose(settings, host)` (it must answer when the backend
    cannot even connect). One without it gets the default: connecting through `create` is the check.
    """
    from dtrun.backends.base import Check

    chosen = name or getattr(settings, "backend", None) or DEFAULT
    module = BACKENDS.get(chosen)
    if module is None:
        return [Check("backend", "FAIL", f"unknown backend '{chosen}'",
                      f"backends: {', '.join(sorted(BACKENDS))} (dtrun config set backend docker)")]
    package = importlib.import_module(module)
    own = getattr(package, "diagnose", None)
    if own is not None:
        checks: list[Check] = own(settings, host)
        return checks
    try:
        backend = create_backend(settings, host, chosen)
    except DtrunError as exc:
        return [Check(chosen, "FAIL", exc.message, exc.hint)]
    return [Check(chosen, "ok", f"the {chosen} backend answers at {backend.host}")]
