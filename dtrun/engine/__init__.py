"""The engine: schedules a plan's jobs on a backend, records their states, saves their outputs.

`Engine` and `RunResult` load on first use, so commands that only read state (`dtrun status`)
import the small modules they need (control, reconcile) without the image and plan machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dtrun.engine.runner import Engine, RunResult

__all__ = ["Engine", "RunResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from dtrun.engine import runner

        return getattr(runner, name)
    raise AttributeError(name)
