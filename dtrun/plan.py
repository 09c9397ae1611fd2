"""The plan stage: a workflow and what it depends on -> a DAG of `Job`s, in the order they may run.

Flows compile to the same `Plan` (`dtrun.flows.compile`): a job there is several steps, run in order on
the job's workspace by the engine, as its `program` says; a workflow job is a one-step job.

Runtime dependencies (`depends-on: [download]`, a workflow of this repository without a tag) become
jobs of the same run; every other dependency (a tag, a workflow's last run, another repository's
tag) is an input the engine resolves against the store. Knows nothing of Docker.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, field, replace
from typing import TYPE_CHECKING

from dtrun.errors import SpecError
from dtrun.images.spec import ImageSpec
from dtrun.providers import PROVIDERS, ProviderContext
from dtrun.providers.torchrun_launch import Torchrun
from dtrun.spec.errors import did_you_mean
from dtrun.spec.graph import runtime_order
from dtrun.spec.loader import Spec
from dtrun.spec.models import Artifact, Dep, RegistryAuth, Resources, Workflow, with_gpus
from dtrun.spec.templating import references, resolve_secrets, secret_marker
from dtrun.spec.typed import dump
from dtrun.structs import struct

if TYPE_CHECKING:
    from dtrun.engine.program import JobProgram

WORKSPACE = "/workspace"


@struct(frozen=True)
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
    #: Paths (relative to the working directory, or absolute) kept between runs of this workflow.
    cache: list[str] = field(default_factory=list)
    #: Folders (absolute, in the job) the engine makes before the job starts: the artifact folders of a
    #: command no prelude could wrap (the docker provider's image run as it is).
    folders: list[str] = field(default_factory=list)
    #: Who pulls the docker provider's image (`registry_auth`, secrets as markers until the job starts):
    #: not part of what the job is, so outside its fingerprint and cache key.
    registry_auth: RegistryAuth | None = field(default=None, compare=False, repr=False)
    #: A multi-step job (a flow job): the dialect's program, which the engine asks what each step runs.
    #: None for a one-container job (a workflow job: `command` and `image` say what runs).
    program: JobProgram | None = field(default=None, compare=False, repr=False)
    #: A job over several nodes (`provider: torchrun` with `nodes: N`); None runs on one node.
    torchrun: Torchrun | None = None

    def secret_references(self) -> list[str]:
        """The secrets this job needs when it starts: those it declares (`secrets:`, passed as
        environment variables) and those its command, entrypoint or env name as `${{ secrets.NAME }}`."""
        texts = [*(self.command or []), *(self.entrypoint or []), *self.env.values()]
        return list(dict.fromkeys([*(self.secrets or []), *references(texts)]))

    def with_secrets(self, secrets: Mapping[str, str]) -> Job:
        """This job as it starts: secrets reach it only as environment variables (`dtrun.secret_env`).

        `${{ secrets.NAME }}` in the command or entrypoint becomes a reference to `$DTRUN_SECRET_NAME`,
        which the environment holds, so no value is ever parsed as shell text or recorded in the
        container's command; in `env` it is the variable's value. Only for the container; the plan,
        records and cache keep the markers. A secret that is not set is a `DtrunError` naming it.
        """
        from dtrun.secret_env import bind_argv, referenced, variable

        argv = [*(self.command or []), *(self.entrypoint or [])]
        names = referenced(argv)
        for name in names:
            resolve_secrets(secret_marker(name), secrets)  # the error that names a missing secret
        entrypoint, command = bind_argv(self.entrypoint, self.command, own_entrypoint=self.image.user_image is None,
                                        where=f"workflow '{self.workflow}'")
        env = {k: resolve_secrets(v, secrets) for k, v in self.env.items()}
        env.update({variable(name): secrets[name] for name in names})
        return replace(self, command=command, entrypoint=entrypoint, env=env)

    def fingerprint(self) -> str:
        """A hash of the resolved job (not of its code or inputs, which the engine adds)."""
        data = asdict(replace(self, program=None))
        data.pop("program")
        data["image"]["requirements"] = hashlib.sha256(self.image.requirements or b"").hexdigest()
        data["image"].pop("origin", None)  # who asked for the image (for error messages), not what it is
        data.pop("registry_auth")
        data.pop("folders")  # follows from the artifacts and the provider, both in the fingerprint
        data["resources"] = dump(self.resources)
        # `node` only when set: the keys of jobs from before it existed stay as they were
        data["artifacts"] = [dump(a, exclude=frozenset() if a.node else frozenset({"node"})) for a in self.artifacts]
        data["inputs"] = [str(d) for d in self.inputs]
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


@struct(frozen=True)
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


def build_plan(spec: Spec, target: str, *, variables: Mapping[str, str] | None = None,
               run_args: Sequence[str] = (), run_name: str | None = None, python_install: str = "auto",
               gpus: int | None = None) -> Plan:
    """The jobs of one run of `target`.

    `variables` override the defaults of `variables.yaml` in every workflow of the run that declares
    them; `run_args` are the extra command-line arguments (`${{ run.args }}`); `run_name` fills
    `${{ run.name }}` (without it the marker stays, for a plan that is only shown). Secrets stay
    markers that the engine resolves when the job starts (`dtrun.spec.templating.resolve_secrets`).
    `gpus` (`dtrun run --gpus N`) overrides the target's GPU count, so its image follows.
    """
    spec.get(target)
    overrides = dict(variables or {})
    materialized: dict[str, Workflow] = {}

    def workflow(name: str) -> Workflow:
        if name not in materialized:
            materialized[name] = spec.materialize(name, overrides, run_args=run_args, run_name=run_name)
            if name == target and gpus is not None:
                materialized[name] = with_gpus(materialized[name], gpus)
        return materialized[name]

    order = runtime_order(target, workflow, set(spec.workflows), spec.dep_position)
    declared = {v for name in order for v in spec.declared.get(name, {})}
    unknown = sorted(set(overrides) - declared)
    if unknown:
        raise SpecError(f"unknown variable '{unknown[0]}' for workflow '{target}'",
                        hint=did_you_mean(unknown[0], declared) +
                        (f"variables: {', '.join(sorted(declared))}" if declared else
                         "this workflow declares no variables (add them to .dtrun/variables.yaml)"))
    ctx = ProviderContext(project_root=spec.project.root, python_install=python_install)
    jobs = [_job(workflow(name), ctx, {**spec.variables.get(name, {}),
                                       **{k: v for k, v in overrides.items() if k in spec.declared.get(name, {})}})
            for name in order]
    return Plan(target=target, jobs=jobs)


def _job(workflow: Workflow, ctx: ProviderContext, variables: dict[str, str]) -> Job:
    provider = PROVIDERS.get(workflow.provider)
    if provider is None:
        raise SpecError(f"workflow '{workflow.name}': the {workflow.provider} provider is not available in "
                        "this version of dtrun", hint=f"providers that can run: {', '.join(sorted(PROVIDERS))}")
    shape = provider.shape(workflow, ctx)
    working_dir = container_path(WORKSPACE, workflow.working_dir or ".")
    env = variables_env(variables)
    for key, value in workflow.env.items():
        host_value = os.environ.get(key) if value is None else value
        if host_value is not None:
            env[key] = host_value
    env.update(shape.env)
    return Job(
        workflow=workflow.name,
        provider=workflow.provider,
        image=shape.image,
        command=shape.command,
        entrypoint=shape.entrypoint,
        env=env,
        working_dir=working_dir,
        artifacts=list(workflow.artifacts),
        resources=workflow.resources,
        ports=shape.ports,
        needs=workflow.runtime_deps,
        inputs=workflow.input_deps,
        secrets=workflow.secrets,
        cache=list(workflow.cache),
        folders=[container_path(working_dir, path) for path in shape.folders],
        registry_auth=workflow.registry_auth,
        torchrun=shape.torchrun,
    )
