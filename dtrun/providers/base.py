"""The provider boundary: one workflow in, what that provider needs to run it out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dtrun.images.spec import ImageSpec
from dtrun.spec.models import Workflow


@dataclass(frozen=True)
class ProviderContext:
    """What a provider may look at besides the workflow: the project folder and the settings it uses."""

    project_root: Path
    python_install: str = "auto"


@dataclass(frozen=True)
class JobShape:
    """What one provider makes of one workflow: image, command and anything it adds to the job."""

    image: ImageSpec
    command: list[str] | None
    entrypoint: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    ports: int = 0


class Provider(Protocol):
    name: str

    def shape(self, workflow: Workflow, ctx: ProviderContext) -> JobShape: ...


def read_requirements(workflow: Workflow, ctx: ProviderContext) -> bytes | None:
    """The workflow's `requirements` file, else the project's `requirements.txt` if there is one."""
    from dtrun.errors import SpecError

    name = workflow.requirements or "requirements.txt"
    path = ctx.project_root / name
    if path.is_file():
        return path.read_bytes()
    if workflow.requirements:
        raise SpecError(f"workflow '{workflow.name}': requirements file {name} does not exist in {ctx.project_root}",
                        hint="the path is relative to the project folder (where .dtrun/ is)")
    return None


def with_setup(commands: list[str], argv: list[str]) -> list[str]:
    """Run the workflow's setup `commands` first in one bash, then replace it with `argv` (exec).

    Without setup commands `argv` runs directly, so signals reach it with no shell in between.
    """
    if not commands:
        return argv
    return ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "\n".join([*commands, 'exec "$@"']),
            argv[0], *argv[1:]]


def python_image(provider: str, workflow: Workflow, ctx: ProviderContext, *,
                 pip_packages: tuple[str, ...] = (), tools: tuple[str, ...] = ()) -> ImageSpec:
    """The image of a provider that runs user code in a Python environment."""
    return ImageSpec(
        tools=tools,
        provider=provider,
        python=workflow.python,
        python_install=workflow.python_install or ctx.python_install,
        gpu=workflow.resources.gpu_count > 0,
        cuda=workflow.cuda,
        requirements=read_requirements(workflow, ctx),
        pip_packages=pip_packages,
    )
