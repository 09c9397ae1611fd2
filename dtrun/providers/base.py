"""The provider boundary: one workflow in, what that provider needs to run it out."""

from __future__ import annotations

import re
import shlex
from dataclasses import field, replace
from pathlib import Path
from typing import Protocol

from dtrun.images.spec import ImageSpec, Origin
from dtrun.providers.torchrun_launch import Torchrun
from dtrun.spec.models import Workflow
from dtrun.structs import struct


@struct(frozen=True)
class ProviderContext:
    """What a provider may look at besides the workflow: the project folder and the settings it uses."""

    project_root: Path
    python_install: str = "auto"


@struct(frozen=True)
class JobShape:
    """What one provider makes of one workflow: image, command and anything it adds to the job."""

    image: ImageSpec
    command: list[str] | None
    entrypoint: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    ports: int = 0
    #: Artifact folders the command cannot make itself (it was not wrapped in the prelude): the engine
    #: makes them before the job starts (`engine.kept.folders_tar`).
    folders: list[str] = field(default_factory=list)
    #: A job over several nodes (a multi-node torchrun); None runs on one.
    torchrun: Torchrun | None = None


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
    # `bash -c SCRIPT NAME ARGS...` makes NAME $0 and ARGS "$@": the program's name goes twice, once as $0
    return ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "\n".join([*commands, 'exec "$@"']),
            argv[0], *argv]  # bash -c SCRIPT NAME ARGS...: $0 is NAME, "$@" the whole argv


def python_image(provider: str, workflow: Workflow, ctx: ProviderContext, *,
                 pip_packages: tuple[str, ...] = (), tools: tuple[str, ...] = ()) -> ImageSpec:
    """The image of a provider that runs user code in a Python environment.

    A workflow whose commands call `conda` gets conda (the base's, else Miniforge) with its Python in
    the activated environment, as dstack's images had: `python_install: conda` without being asked.
    """
    conda_line = conda_command(workflow)
    install = workflow.python_install or ("conda" if conda_line else ctx.python_install)
    why_conda = ("`python_install: conda`" if workflow.python_install == "conda" else
                 f"its commands call `conda` (`{conda_line}`)" if conda_line and install == "conda" else None)
    return ImageSpec(
        tools=tools,
        provider=provider,
        python=workflow.python,
        python_install=install,
        gpu=workflow.resources.gpu_count > 0,
        cuda=workflow.cuda,
        requirements=read_requirements(workflow, ctx),
        pip_packages=pip_packages,
        origin=Origin(workflow.name, f"`python: {workflow.python}`" if workflow.python else None, why_conda),
    )


_CONDA = re.compile(r"(?:^|[\s;&|(`])(?:conda|mamba)(?:\s|$)")


def conda_command(workflow: Workflow) -> str | None:
    """The first command (of before_run, setup, commands) that runs `conda` or `mamba`, if any."""
    for line in [*workflow.before_run, *workflow.setup, *workflow.commands]:
        for part in line.splitlines():
            if _CONDA.search(part):
                return part.strip()
    return None


#: How dtrun's own shells start (see `providers.bash.shell_command`); a prelude is put inside such a script.
BASH = ("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c")
SH = ("/bin/sh", "-c")


def artifact_folders(workflow: Workflow) -> list[str]:
    """Shell lines that create every declared artifact folder before the job's own commands.

    dstack created them before the job started, so `echo hi > output/hello.txt` works with
    `artifacts: [output]`. The lines run in the job as its user, so the folders are that user's and
    writable, on every backend; relative paths are relative to the working directory like the job's
    own. A folder that cannot be created (a read-only place of the image) is said on stderr and the
    job goes on: it fails only if it writes there.
    """
    paths = list(dict.fromkeys(a.path for a in workflow.artifacts))
    if not paths:
        return []
    quoted = " ".join(shlex.quote(p) for p in paths)
    return [f"for _dtrun_a in {quoted}; do mkdir -p -- \"$_dtrun_a\" 2>/dev/null || "
            f"echo \"dtrun: cannot create the artifact folder $_dtrun_a as $(id -un 2>/dev/null || id -u)\" >&2; "
            "done; unset _dtrun_a"]


def prelude(workflow: Workflow) -> list[str]:
    """What runs before the job's own command: artifact folders, then `before_run`."""
    return [*artifact_folders(workflow), *workflow.before_run]


def with_prelude(shape: JobShape, workflow: Workflow) -> JobShape:
    """`shape` with `prelude(workflow)` run first, in the job, whatever its provider.

    A script of dtrun's own shell (bash, or the docker provider's `/bin/sh -c`) gets the lines at its
    start; any other command is wrapped in a shell that runs them and then `exec`s it, so signals
    reach it directly. The image's own command, or one given to an `entrypoint`, cannot be wrapped: it
    is returned as it is, with its artifact folders in `folders`, which the engine makes before it starts.
    """
    lines = prelude(workflow)
    command = shape.command
    if not lines:
        return shape
    if not command or shape.entrypoint:  # the image's own command, or the arguments of a given entrypoint
        if workflow.before_run:
            from dtrun.errors import SpecError

            raise SpecError(f"workflow '{workflow.name}': `before_run` needs `commands` here: the image runs its "
                            "own command" + (" (through `entrypoint`)" if shape.entrypoint else ""),
                            hint="put the image's command at the end of `commands` (its shell runs them in order)")
        return replace(shape, folders=list(dict.fromkeys(a.path for a in workflow.artifacts)))
    for shell in (BASH, SH):
        if tuple(command[:len(shell)]) == shell and len(command) > len(shell):
            script = command[len(shell)]
            head, sep, rest = script.partition("\n") if script.startswith("set -e\n") else ("", "", script)
            inner = "\n".join([*lines, rest])
            new = f"{head}{sep}{inner}" if sep else inner
            return replace(shape, command=[*command[:len(shell)], new, *command[len(shell) + 1:]])
    sh = BASH if shape.image.user_image is None else SH
    return replace(shape, command=[*sh, "\n".join([*lines, 'exec "$@"']), command[0], *command])


class WithPrelude:
    """A provider whose jobs run `prelude` first: the registry wraps every provider in it, so a new
    provider gets artifact folders and `before_run` without knowing about them."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name

    def shape(self, workflow: Workflow, ctx: ProviderContext) -> JobShape:
        return with_prelude(self.inner.shape(workflow, ctx), workflow)
