"""Loading every workflow file of a project into validated `Workflow` models."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dtrun.errors import Position, SpecError
from dtrun.spec.errors import SpecErrors, did_you_mean, validation_errors
from dtrun.spec.models import Workflow
from dtrun.spec.project import Project
from dtrun.spec.yamlpos import Document, load_yaml


@dataclass
class Spec:
    """All workflows of a project, with where each was defined."""

    project: Project
    workflows: dict[str, Workflow] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    documents: dict[str, Document] = field(default_factory=dict)
    variables: dict[str, dict[str, str]] = field(default_factory=dict)

    def get(self, name: str) -> Workflow:
        if name in self.workflows:
            return self.workflows[name]
        known = sorted(self.workflows)
        raise SpecError(
            f"no workflow named '{name}'",
            hint=did_you_mean(name, known) + (f"workflows: {', '.join(known)}" if known else "none are defined"),
        )


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


def load_spec(project: Project) -> Spec:
    """Load and validate every workflow file; all errors are collected and raised together."""
    from dtrun.providers import PROVIDERS

    spec = Spec(project)
    errors: list[SpecError] = []
    for file in workflow_files(project):
        doc = load_yaml(file)
        data = doc.data
        if data is None:
            continue
        if not isinstance(data, dict) or "workflows" not in data:
            errors.append(SpecError("expected a mapping with a 'workflows' list at the top",
                                    position=doc.position(()),
                                    hint="the file starts with `workflows:` followed by a list of workflows"))
            continue
        extra = sorted(set(data) - {"workflows"})
        for key in extra:
            errors.append(SpecError(f"unknown top-level property '{key}'", position=doc.position((key,)),
                                    hint="the only top-level property is 'workflows'"))
        items = data["workflows"] or []
        if not isinstance(items, list):
            errors.append(SpecError("'workflows' must be a list", position=doc.position(("workflows",)),
                                    hint="write each workflow as a list item starting with `- name: ...`"))
            continue
        for index, item in enumerate(items):
            path = ("workflows", index)
            errors.extend(_add_workflow(spec, doc, path, item, PROVIDERS))
    if errors:
        raise SpecErrors(errors)
    if not spec.workflows:
        files = ", ".join(str(f) for f in workflow_files(project)) or f"{project.root}/.dtrun/workflows.yaml"
        raise SpecError(f"no workflows defined (looked in {files})",
                        hint="add a `workflows:` list to .dtrun/workflows.yaml")
    return spec


def _add_workflow(spec: Spec, doc: Document, path: tuple[str | int, ...], item: Any,
                  providers: dict[str, Any]) -> list[SpecError]:
    if not isinstance(item, dict):
        return [SpecError("each workflow must be a mapping", position=doc.position(path),
                          hint="start each workflow with `- name: ...`")]
    provider = item.get("provider")
    if isinstance(provider, str) and provider not in providers:
        return [SpecError(f"unknown provider '{provider}'", position=doc.position((*path, "provider")),
                          hint=did_you_mean(provider, providers) + f"providers: {', '.join(sorted(providers))}")]
    try:
        workflow = Workflow.model_validate(item)
    except ValidationError as exc:
        return list(validation_errors(exc, Workflow, doc, path))
    if workflow.name in spec.workflows:
        first = spec.positions[workflow.name]
        return [SpecError(f"workflow '{workflow.name}' is defined twice (first at {first})",
                          position=doc.position((*path, "name")),
                          hint="workflow names must be unique across all workflow files")]
    spec.workflows[workflow.name] = workflow
    spec.positions[workflow.name] = doc.position(path)
    spec.documents[workflow.name] = doc
    return []
