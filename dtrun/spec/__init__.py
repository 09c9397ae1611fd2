"""The spec stage: files on disk -> validated models with source positions. Knows nothing of Docker."""

from dtrun.spec.loader import Spec, load_spec, workflow_files
from dtrun.spec.models import PROVIDER_NAMES, Artifact, Dep, Resources, Workflow
from dtrun.spec.project import Project, find_project
from dtrun.spec.templating import resolve_secrets

__all__ = ["PROVIDER_NAMES", "Artifact", "Dep", "Project", "Resources", "Spec", "Workflow", "find_project",
           "load_spec", "resolve_secrets", "workflow_files"]
