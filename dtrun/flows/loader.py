"""Loading flow files (YAML or JSON) and `action-datatorch.yaml` into typed models with positions.

JSON is loaded with the same position-keeping YAML loader (JSON is valid YAML here), so an error in a
`.json` flow is reported at its line and column too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from dtrun.errors import DtrunError, Position, SpecError
from dtrun.flows.models import ActionManifest, Flow
from dtrun.spec.errors import SpecErrors, did_you_mean, validation_errors
from dtrun.spec.typed import Model, ValidationError
from dtrun.spec.yamlpos import Document, load_yaml
from dtrun.structs import struct

FLOW_SUFFIXES = (".yml", ".yaml", ".json")
MANIFEST = "action-datatorch.yaml"
M = TypeVar("M", bound=Model)


@struct(frozen=True)
class LoadedFlow:
    flow: Flow
    doc: Document
    path: Path

    def position(self, *path: str | int) -> Position:
        return self.doc.position(path)


def _validate(model: type[M], doc: Document) -> M:
    if not isinstance(doc.data, dict):
        raise SpecError(f"{doc.file.name} must be a mapping of properties", position=doc.position(()))
    try:
        return model.validate(doc.data)
    except ValidationError as exc:
        raise SpecErrors(validation_errors(exc, doc, ())) from None


def load_flow(path: Path) -> LoadedFlow:
    if path.suffix.lower() not in FLOW_SUFFIXES:
        raise SpecError(f"{path}: a flow file must have a .yml, .yaml or .json extension",
                        hint="rename the file (seed 004: flows are YAML or JSON)")
    if not path.is_file():
        raise SpecError(f"no flow file at {path}")
    doc = load_yaml(path)
    data = doc.data
    # YAML 1.1 reads the key `on` as the boolean true; a flow means its triggers.
    if isinstance(data, dict) and "True" in data and "on" not in data:
        data["on"] = data.pop("True")
        for key in [k for k in doc.positions if k[:1] == ("True",)]:
            moved = ("on", *key[1:])
            doc.positions[moved] = doc.positions.pop(key)
    flow = _validate(Flow, doc)
    _check_needs(flow, doc)
    return LoadedFlow(flow, doc, path)


def _check_needs(flow: Flow, doc: Document) -> None:
    for job_id, job in flow.jobs.items():
        for i, need in enumerate(job.needs):
            if need not in flow.jobs:
                raise SpecError(f"job '{job_id}' needs '{need}', which is not a job of this flow",
                                position=doc.position(("jobs", job_id, "needs", i)),
                                hint=did_you_mean(need, flow.jobs) + f"jobs: {', '.join(flow.jobs)}")
            if need == job_id:
                raise SpecError(f"job '{job_id}' needs itself", position=doc.position(("jobs", job_id, "needs")))
        ids = [s.id for s in job.steps if s.id]
        for step_id in ids:
            if ids.count(step_id) > 1:
                raise SpecError(f"job '{job_id}' has two steps with id '{step_id}'",
                                position=doc.position(("jobs", job_id, "steps")))
    order(flow, doc)


def order(flow: Flow, doc: Document | None = None) -> list[str]:
    """Job ids in an order that respects `needs`; a cycle is an error."""
    done: list[str] = []
    visiting: list[str] = []

    def visit(job_id: str) -> None:
        if job_id in done:
            return
        if job_id in visiting:
            cycle = " -> ".join([*visiting[visiting.index(job_id):], job_id])
            raise SpecError(f"`needs` has a cycle: {cycle}",
                            position=doc.position(("jobs", job_id, "needs")) if doc else None,
                            hint="remove one of these needs")
        visiting.append(job_id)
        for need in flow.jobs[job_id].needs:
            visit(need)
        visiting.pop()
        done.append(job_id)

    for job_id in flow.jobs:
        visit(job_id)
    return done


def upstream(flow: Flow, job_id: str) -> set[str]:
    """Every job that `job_id` waits for, directly or through others."""
    seen: set[str] = set()
    todo = list(flow.jobs[job_id].needs)
    while todo:
        need = todo.pop()
        if need not in seen:
            seen.add(need)
            todo.extend(flow.jobs[need].needs)
    return seen


def load_manifest(folder: Path, what: str, file: str | None = None) -> tuple[ActionManifest, Document]:
    """The manifest of an action's folder: `file` (the object form's `action.file`) or action-datatorch.yaml."""
    if file:
        path = (folder / file).resolve()
        if not path.is_relative_to(folder.resolve()):
            raise SpecError(f"{what}: the manifest file '{file}' is outside the action's folder",
                            hint="`file` names a file inside the action's repository")
        if not path.is_file():
            raise SpecError(f"{what} has no {file}", hint=f"check `file:` of the action (default: {MANIFEST})")
    else:
        path = folder / MANIFEST
        if not path.is_file():
            alt = folder / "action-datatorch.yml"
            if alt.is_file():
                path = alt
            else:
                raise SpecError(f"{what} has no {MANIFEST}",
                                hint=f"an action's folder or repository needs {MANIFEST} at its top "
                                "(`dtrun action init` writes one)")
    doc = load_yaml(path)
    return _validate(ActionManifest, doc), doc


def relabel(exc: DtrunError, prefix: str, position: Position | None = None) -> DtrunError:
    """The same error with `prefix` ("job 'x', step y") before its message and a position if it had none.

    Works for every `DtrunError`, `SpecErrors` included (whose constructor takes the list of errors:
    rebuilding one with `type(exc)(message, position=...)` raised a TypeError instead of the error).
    """
    if isinstance(exc, SpecErrors):
        return SpecErrors([SpecError(f"{prefix}: {e.message}", position=e.position or position, hint=e.hint)
                           for e in exc.errors])
    try:
        return type(exc)(f"{prefix}: {exc.message}", position=exc.position or position, hint=exc.hint)
    except TypeError:  # a subclass with its own constructor: keep its text, as a plain DtrunError
        return DtrunError(f"{prefix}: {exc.message}", position=exc.position or position, hint=exc.hint)


def manifest_from_text(text: str, source: str) -> ActionManifest:
    """A manifest stored in an image label (published actions carry theirs)."""
    doc = load_yaml(Path(source), text)
    return _validate(ActionManifest, doc)


def find_flows(paths: list[Path]) -> list[Path]:
    """Flow files named directly, or found (non-recursively) in the named folders."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FLOW_SUFFIXES))
        else:
            out.append(path)
    return out
