"""The engine: schedules a plan's jobs on a backend, records their states, saves their outputs."""

from dtrun.engine.runner import Engine, Hooks, RunResult

__all__ = ["Engine", "Hooks", "RunResult"]
