"""dtrun: container-native runner for ML workflows (dstack-style workflows, DataTorch-style flows).

The public API is `Session` and the `run` shortcut (see docs/api.md); both load on first use, so
`import dtrun` stays cheap for the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dtrun.api import Session, run

__version__ = "0.1.0"
__all__ = ["Session", "run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from dtrun import api

        return getattr(api, name)
    raise AttributeError(f"module 'dtrun' has no attribute {name!r}")
