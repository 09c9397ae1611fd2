"""The plan stage: a workflow and what it depends on -> a DAG of `Job`s, in the order they may run.

Runtime dependencies (`depends-on: [download]`, a workflow of this repository without a tag) become
jobs of the same run; every other dependency (a tag, a workflow's last run, another repository's
tag) is an input the engine resolves against the store. Knows nothing of Docker.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

from dtrun.errors import SpecError
from dtrun.images.spec import ImageSpec
from dtrun.providers import PROVIDERS, ProviderContext
from dtrun.spec.loader import Spec
from dtrun.spec.models import Artifact, Dep, Resources

WORKSPACE = "/workspace"


@dataclass(frozen=True)
class Job:
    workflow: str
    provider: str
    image: ImageSpec
    command: list[str] | None
    entrypoint: list[str] | None
    env: dict[str, str]
    working_dir: str
    artifacts: list[Artifact]
    resources: Resources
    ports: int = 0
    needs: list[str] = field(default_factory=list)
    inputs: list[Dep] = field(default_factory=list)
    secrets: list[str] | None = None

    def fingerprint(self) -> str:
        """A hash of the resolved job (not of its code or inputs, which the engine adds)."""
        data = asdict(self)
        data["image"]["requirements"] = hashlib.sha256(self.image.requirements or b"").hexdigest()
        data["resources"] = self.resources.model_dump()
        data["artifacts"] = [a.model_dump() for a in self.artifacts]
        data["inputs"] = [str(d) for d in self.inputs]
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Plan:
    target: str
    jobs: list[Job]

    def job(self, workflow: str) -> Job:
        return next(j for j in self.jobs if j.workflow == workflow)


def variables_env(variables: dict[str, str]) -> dict[str, str]:
    """`batch-size` -> `BATCH_SIZE`, as seed 002 passes variables to the job."""
    return {name.upper().replace("-", "_"): str(value) for name, value in variables.items()}


def container_path(working_dir: str, path: str) -> str:
    """An artifact path as seen in the container: relative paths are under the working directory."""
    import posixpath

    if path.startswith("/"):
        return posixpath.normpath(path)
    return posixpath.normpath(posixpath.join(working_dir, path))


def build_plan(spec: Spec, target: str, *, variables: dict[str, dict[str, str]] | None = None,
               python_install: str = "auto") -> Plan:
    ctx = ProviderContext(project_root=spec.project.root, python_install=python_install)
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str, via: str | None) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name):], name])
            raise SpecError(f"depends-on has a cycle: {cycle}", position=spec.positions.get(name),
                            hint="remove one of these dependencies")
        if name not in spec.workflows:
            if via is None:
                spec.get(name)  # raises the "no workflow named" error with suggestions
            raise SpecError(f"workflow '{via}' depends on '{name}', which is not defined",
                            position=spec.positions.get(via or ""),
                            hint=f"workflows: {', '.join(sorted(spec.workflows))}")
        visiting.append(name)
        for dep in spec.workflows[name].all_deps:
            if dep.is_runtime and dep.workflow:
                visit(dep.workflow, name)
        visiting.pop()
        order.append(name)

    visit(target, None)
    jobs = [_job(spec, name, ctx, (variables or {}).get(name, {})) for name in order]
    return Plan(target=target, jobs=jobs)


def _job(spec: Spec, name: str, ctx: ProviderContext, variables: dict[str, str]) -> Job:
    workflow = spec.workflows[name]
    shape = PROVIDERS[workflow.provider].shape(workflow, ctx)
    working_dir = container_path(WORKSPACE, workflow.working_dir or ".")
    env = variables_env(variables)
    for key, value in workflow.env.items():
        host_value = os.environ.get(key) if value is None else value
        if host_value is not None:
            env[key] = host_value
    env.update(shape.env)
    needs = [d.workflow for d in workflow.all_deps if d.is_runtime and d.workflow]
    inputs = [d for d in workflow.all_deps if not d.is_runtime]
    return Job(
        workflow=name,
        provider=workflow.provider,
        image=shape.image,
        command=shape.command,
        entrypoint=shape.entrypoint,
        env=env,
        working_dir=working_dir,
        artifacts=list(workflow.artifacts),
        resources=workflow.resources,
        ports=shape.ports,
        needs=needs,
        inputs=inputs,
        secrets=workflow.secrets,
    )
