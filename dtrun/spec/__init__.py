"""The spec stage: files on disk -> validated models with source positions. Knows nothing of Docker.

The names below load on first use: importing one module of the stage (`dtrun.spec.typed` for the flow
models, `dtrun.spec.yamlpos` for the settings file) does not load the whole workflow loader with it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dtrun.spec.loader import Spec, load_spec, workflow_files
    from dtrun.spec.models import PROVIDER_NAMES, Artifact, Dep, Resources, Workflow
    from dtrun.spec.project import Project, find_project
    from dtrun.spec.templating import resolve_secrets

_WHERE = {"Spec": "loader", "load_spec": "loader", "workflow_files": "loader", "PROVIDER_NAMES": "models",
          "Artifact": "models", "Dep": "models", "Resources": "models", "Workflow": "models", "Project": "project",
          "find_project": "project", "resolve_secrets": "templating"}

__all__ = ["PROVIDER_NAMES", "Artifact", "Dep", "Project", "Resources", "Spec", "Workflow", "find_project",
           "load_spec", "resolve_secrets", "workflow_files"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"dtrun.spec.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'dtrun.spec' has no attribute {name!r}")
