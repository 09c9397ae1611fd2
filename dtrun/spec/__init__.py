"""The spec stage: files on disk -> validated models with source positions. Knows nothing of Docker."""

from dtrun.spec.loader import Spec, load_spec, workflow_files
from dtrun.spec.models import Artifact, Dep, Resources, Workflow
from dtrun.spec.project import Project, find_project

__all__ = ["Artifact", "Dep", "Project", "Resources", "Spec", "Workflow", "find_project", "load_spec",
           "workflow_files"]
