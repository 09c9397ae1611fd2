"""Backends by name: `backend: docker` in the config (the default) picks `dtrun.backends.docker`.

A backend is a package under `dtrun/backends/` with a `create(settings, host)` factory returning an
object that implements `dtrun.backends.base.Backend`. Adding one is a new package plus one line here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from dtrun.errors import DtrunError

if TYPE_CHECKING:
    from dtrun.backends.base import Backend
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
