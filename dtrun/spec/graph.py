"""The runtime-dependency graph of `depends-on`: undefined workflows and cycles, with positions."""

from __future__ import annotations

from collections.abc import Callable

from dtrun.errors import Position, SpecError
from dtrun.spec.errors import did_you_mean
from dtrun.spec.models import Workflow

#: Where workflow `name` names `dep` in its depends-on (for the error's position).
Where = Callable[[str, str], "Position | None"]


class CycleError(SpecError):
    """`depends-on` loops back; `members` are the workflows on the loop."""

    def __init__(self, cycle: list[str], position: Position | None) -> None:
        super().__init__(f"depends-on has a cycle: {' -> '.join(cycle)}", position=position,
                         hint="remove one of these dependencies")
        self.members = frozenset(cycle)


def runtime_order(target: str, workflow: Callable[[str], Workflow], defined: set[str],
                  where: Where | None = None) -> list[str]:
    """`target` and the workflows it depends on at runtime, each after its dependencies.

    `workflow(name)` gives a (materialised) workflow; `defined` are the names that exist. Raises a
    `SpecError` naming the cycle, or the dependency that is not defined.
    """
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        visiting.append(name)
        for dep in workflow(name).runtime_deps:
            position = where(name, dep) if where else None
            if dep in visiting:
                raise CycleError([*visiting[visiting.index(dep):], dep], position)
            if dep not in defined:
                raise SpecError(f"workflow '{name}' depends on '{dep}', which is not defined", position=position,
                                hint=did_you_mean(dep, defined) + f"workflows: {', '.join(sorted(defined))}")
            visit(dep)
        visiting.pop()
        order.append(name)

    visit(target)
    return order


def check_graph(workflows: dict[str, Workflow], where: Where | None = None) -> list[SpecError]:
    """Every undefined runtime dependency and every cycle of a set of workflows, once each."""
    errors: list[SpecError] = []
    seen: set[object] = set()
    for name in workflows:
        try:
            runtime_order(name, workflows.__getitem__, set(workflows), where)
        except SpecError as exc:
            key = exc.members if isinstance(exc, CycleError) else exc.message
            if key not in seen:
                seen.add(key)
                errors.append(exc)
    return errors
