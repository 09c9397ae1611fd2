"""Loading every workflow file of a project into validated `Workflow` models.

Each workflow is kept twice: as its raw YAML mapping with the position of every value (so that a run
can substitute its own variable values and still report errors at file:line:col), and as a model
made with the variables' defaults (what `dtrun list` and `dtrun validate` look at).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field, replace
from pathlib import Path
from typing import Any

from dtrun.errors import Position, SpecError
from dtrun.spec.custom_providers import CustomProvider, as_docker, load_providers, provider_files
from dtrun.spec.errors import SpecErrors, SpecWarning, did_you_mean, validation_errors
from dtrun.spec.graph import check_graph
from dtrun.spec.legacy import normalize
from dtrun.spec.models import PROVIDER_NAMES, Workflow
from dtrun.spec.project import Project
from dtrun.spec.rules import check_properties, provider_of
from dtrun.spec.templating import Scope, substitute
from dtrun.spec.typed import ValidationError
from dtrun.spec.variables import GLOBAL, Variable, load_variables, variable_files
from dtrun.spec.yamlpos import Document, PathKey, load_yaml
from dtrun.structs import struct


@struct(frozen=True)
class Source:
    """A workflow as written: its mapping (unknown properties removed), its file and where in it."""

    doc: Document
    path: PathKey
    item: dict[str, Any]
    #: False when the provider is missing or unknown: only the templates can be checked then.
    provider_ok: bool = True


@struct
class Spec:
    """All workflows of a project, with where each was defined and the variables each declares."""

    project: Project
    workflows: dict[str, Workflow] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    documents: dict[str, Document] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    declared: dict[str, dict[str, Variable]] = field(default_factory=dict)
    #: Each workflow's own variables (not the `global:` ones): what `$variables_as_args` passes.
    own: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Properties accepted without (all of) their meaning here, and skipped invalid workflows.
    warnings: list[SpecWarning] = field(default_factory=list)
    #: Every error found; with `strict=False` the workflows they concern are left out of `workflows`.
    errors: list[SpecError] = field(default_factory=list)
    #: Each invalid workflow's errors (`get` raises them), for a non-strict load.
    invalid: dict[str, list[SpecError]] = field(default_factory=dict)

    @property
    def variables(self) -> dict[str, dict[str, str]]:
        """Each workflow's variables with their defaults."""
        return {w: {n: v.default for n, v in values.items()} for w, values in self.declared.items()}

    def get(self, name: str) -> Workflow:
        if name in self.workflows:
            return self.workflows[name]
        if name in self.invalid:
            raise SpecErrors(self.invalid[name])
        known = sorted(self.workflows)
        broken = sorted({str(e.position.file) for e in self.errors if e.position})
        raise SpecError(
            f"no workflow named '{name}'",
            hint=did_you_mean(name, known) + (f"workflows: {', '.join(known)}" if known else "none are defined") +
            (f"; files with errors (see `dtrun validate`): {', '.join(broken)}" if broken else ""),
        )

    def warnings_for(self, name: str) -> list[SpecWarning]:
        """What `dtrun run name` shows: the warnings of the workflows it runs, and those of whole files
        (a workflow skipped because it is invalid)."""
        from dtrun.spec.graph import runtime_order

        try:
            names = set(runtime_order(name, self.workflows.__getitem__, set(self.workflows)))
        except SpecError:
            names = {name}
        return [w for w in self.warnings if w.workflow is None or w.workflow in names]

    def raise_errors(self) -> None:
        """`dtrun validate`: every error of every file, sorted by position."""
        if self.errors:
            raise SpecErrors(_sorted(self.errors))

    def dep_position(self, name: str, dep: str) -> Position | None:
        """Where workflow `name` writes its runtime dependency `dep`."""
        source, workflow = self.sources.get(name), self.workflows.get(name)
        if source is None or workflow is None:
            return None
        for index, item in enumerate(workflow.depends_on):
            if item.workflow == dep and not item.tag and not item.repo:
                return source.doc.position((*source.path, "depends-on", index))
        return self.positions.get(name)

    def materialize(self, name: str, overrides: Mapping[str, str] | None = None, *,
                    run_args: Sequence[str] = (), run_name: str | None = None) -> Workflow:
        """The workflow `name` with `${{ ... }}` substituted for one run: its variables' defaults
        updated by `overrides` (those it does not declare are ignored), the run's extra arguments and
        its name. Errors carry the position of the value that caused them."""
        self.get(name)
        values = {**self.variables.get(name, {}),
                  **{k: v for k, v in (overrides or {}).items() if k in self.declared.get(name, {})}}
        workflow, errors = _validate(self.sources[name], Scope(values, tuple(run_args), run_name,
                                                               self.own.get(name, ())))
        if errors or workflow is None:
            raise SpecErrors(errors)
        return workflow


def workflow_files(project: Project) -> list[Path]:
    """`workflows.yaml` and `workflows/*.yaml` of `.dtrun/` and `.dstack/`, in a stable order."""
    files: list[Path] = []
    for folder in project.spec_dirs:
        for suffix in ("yaml", "yml"):
            if (folder / f"workflows.{suffix}").is_file():
                files.append(folder / f"workflows.{suffix}")
        sub = folder / "workflows"
        if sub.is_dir():
            files.extend(sorted(p for p in sub.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file()))
    return files


def load_spec(project: Project, *, strict: bool = True) -> Spec:
    """Load and validate every workflow, variables and providers file.

    `strict` (validate, list): any error raises, all of them together. Otherwise (`dtrun run`) an error
    in one workflow does not block another: the valid workflows load, `spec.errors` keeps every error,
    `spec.invalid` each broken workflow's own, and `spec.warnings` one line per file with errors.
    """
    spec = Spec(project)
    declared, errors = load_variables(variable_files(project))
    shared = declared.pop(GLOBAL, {})
    providers, provider_errors = load_providers(provider_files(project.spec_dirs))
    errors.extend(provider_errors)
    for file in workflow_files(project):
        try:
            doc = load_yaml(file)
        except SpecError as exc:
            errors.append(exc)
            continue
        errors.extend(_load_file(spec, doc, providers))
    for owner, values in declared.items():
        if owner not in spec.sources and values:
            first = next(iter(values.values()))
            known = sorted(spec.sources)
            errors.append(SpecError(f"variables.yaml sets variables of '{owner}', which is not a workflow",
                                    position=first.workflow_position,
                                    hint=did_you_mean(owner, known) + f"workflows: {', '.join(known)}"))
    for name in spec.sources:
        spec.own[name] = tuple(declared.get(name, {}))
        if shared or name in declared:
            spec.declared[name] = {**shared, **declared.get(name, {})}
    for workflow in declared:
        spec.declared.setdefault(workflow, declared[workflow])
    for name, source in spec.sources.items():
        model, found = _validate(source, Scope(spec.variables.get(name, {}), own=spec.own.get(name, ())))
        if found:
            spec.invalid[name] = found
        errors.extend(found)
        if model is not None and not found:
            spec.workflows[name] = model
    # Errors found while adding a workflow (unknown properties...) belong to that workflow too.
    for error in errors:
        holder = _owner_of(spec, error)
        if holder is not None and error not in spec.invalid.get(holder, []):
            spec.invalid.setdefault(holder, []).append(error)
            spec.workflows.pop(holder, None)
    graph = check_graph(spec.workflows, spec.dep_position)
    for error in graph:
        for name in _graph_members(spec, error):
            spec.invalid.setdefault(name, []).append(error)
            spec.workflows.pop(name, None)
    errors.extend(graph)
    spec.errors = _sorted(errors)
    if strict and spec.errors:
        raise SpecErrors(spec.errors)
    if not spec.workflows and not spec.errors:
        files = ", ".join(str(f) for f in workflow_files(project)) or f"{project.root}/.dtrun/workflows.yaml"
        raise SpecError(f"no workflows defined (looked in {files})",
                        hint="add a `workflows:` list to .dtrun/workflows.yaml")
    if not spec.workflows:
        raise SpecErrors(spec.errors)
    spec.warnings = [*spec.warnings, *_skipped(spec)]
    return spec


def _sorted(errors: list[SpecError]) -> list[SpecError]:
    return sorted(errors, key=lambda e: (str(e.position.file), e.position.line, e.position.column) if e.position
                  else ("", 0, 0))


def _owner_of(spec: Spec, error: SpecError) -> str | None:
    """The workflow whose mapping holds the error's position (the last one starting before it in its file)."""
    if error.position is None:
        return None
    best: tuple[int, str] | None = None
    for name, position in spec.positions.items():
        if position.file == error.position.file and position.line <= error.position.line \
                and (best is None or position.line > best[0]):
            best = (position.line, name)
    return best[1] if best else None


def _graph_members(spec: Spec, error: SpecError) -> list[str]:
    members = getattr(error, "members", None)
    if members:
        return sorted(members)
    owner = _owner_of(spec, error)
    return [owner] if owner else []


def _skipped(spec: Spec) -> list[SpecWarning]:
    """One warning line per file with errors, at its first error: what `dtrun run` shows."""
    first: dict[str, SpecError] = {}
    for error in spec.errors:
        key = str(error.position.file) if error.position else ""
        first.setdefault(key, error)
    out = []
    for error in first.values():
        count = sum(1 for e in spec.errors if (str(e.position.file) if e.position else "") ==
                    (str(error.position.file) if error.position else ""))
        more = f" (and {count - 1} more)" if count > 1 else ""
        skipped = sorted(n for n in spec.invalid if spec.positions.get(n) and error.position and
                         spec.positions[n].file == error.position.file)
        what = f"skipped {', '.join(skipped)}: " if skipped else ""
        out.append(SpecWarning(f"{what}{error.message}{more}; `dtrun validate` shows every error", error.position))
    return out


def _load_file(spec: Spec, doc: Document, providers: dict[str, CustomProvider]) -> list[SpecError]:
    data = doc.data
    if data is None:
        return []
    if not isinstance(data, dict) or "workflows" not in data:
        return [SpecError("expected a mapping with a 'workflows' list at the top", position=doc.position(()),
                          hint="the file starts with `workflows:` followed by a list of workflows")]
    errors = [SpecError(f"unknown top-level property '{key}'", position=doc.position((key,)),
                        hint="the only top-level property is 'workflows'") for key in data if key != "workflows"]
    items = data["workflows"] or []
    if not isinstance(items, list):
        return [*errors, SpecError("'workflows' must be a list", position=doc.position(("workflows",)),
                                   hint="write each workflow as a list item starting with `- name: ...`")]
    for index, item in enumerate(items):
        errors.extend(_add_workflow(spec, doc, ("workflows", index), item, providers))
    return errors


def _add_workflow(spec: Spec, doc: Document, path: PathKey, item: Any,
                  providers: dict[str, CustomProvider]) -> list[SpecError]:
    if not isinstance(item, dict):
        return [SpecError("each workflow must be a mapping", position=doc.position(path),
                          hint="start each workflow with `- name: ...`")]
    name = item.get("name")
    if not isinstance(name, str) or not name:
        return [SpecError("missing required property 'name'" if name is None else "'name' must be a text",
                          position=doc.position(path if name is None else (*path, "name")),
                          hint="each workflow starts with `- name: ...` (the name you give to `dtrun run`)")]
    if name in spec.sources:
        first = spec.positions[name]
        return [SpecError(f"workflow '{name}' is defined twice (first at {first})",
                          position=doc.position((*path, "name")),
                          hint="workflow names must be unique across all workflow files")]
    normal = normalize(item, doc, path, PROVIDER_NAMES, providers)
    item = normal.item
    provider = provider_of(item)
    if isinstance(provider, str) and provider not in PROVIDER_NAMES and provider in providers:
        item, warning = as_docker(item, providers[provider], doc, path)
        normal.warnings.append(warning)
    spec.warnings.extend(replace(w, workflow=name) for w in normal.warnings)
    spec.positions[name] = doc.position(path)
    spec.documents[name] = doc
    if normal.errors:  # a historical form written wrongly: its own errors say it best
        spec.sources[name] = Source(doc, path, {}, False)
        return normal.errors
    checked = check_properties(item, doc, path)
    spec.sources[name] = Source(doc, path, checked.item, checked.provider_ok)
    return checked.errors


def _validate(source: Source, scope: Scope) -> tuple[Workflow | None, list[SpecError]]:
    data, errors = substitute(source.item, scope, source.doc, source.path)
    if not source.provider_ok:
        return None, errors
    try:
        workflow = Workflow.validate(data)
    except ValidationError as exc:
        return None, [*errors, *validation_errors(exc, source.doc, source.path)]
    return (None if errors else workflow), errors
