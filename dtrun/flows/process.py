"""What runs for a step: the image it needs and the entrypoint, command and environment in it.

One function per question, shared by the flow engine (which copies an action's folder into the step
container at `ACTION_DIR`) and by `dtrun action build` (which bakes the folder into an image there), so
a published action runs exactly as its folder does.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dtrun.config import Settings
from dtrun.errors import DtrunError
from dtrun.flows.actions import ACTION_LABEL, Action
from dtrun.flows.expressions import Scope, render_shell
from dtrun.flows.models import ActionManifest, Runs
from dtrun.flows.runs import action_command, image_tools
from dtrun.images.spec import ImageSpec
from dtrun.spec.typed import dump
from dtrun.structs import struct

if TYPE_CHECKING:
    from dtrun.backends.base import Backend

ACTION_DIR = "/dtrun/action"
_SKIP = {".git", ".dtrun-complete", "__pycache__"}


@struct(frozen=True)
class Process:
    entrypoint: list[str] | None
    command: list[str] | None
    env: dict[str, str] = field(default_factory=dict)


def default_image(settings: Settings) -> str:
    """Shell steps need nothing but a shell: the configured base image, as workflows use (DTRUN_BASE_IMAGE)."""
    from dtrun.images.manager import DEFAULT_CPU_BASE

    return settings.base_image or DEFAULT_CPU_BASE


def image_spec(action: Action, settings: Settings, job_image: str | None, gpu: bool = False) -> ImageSpec | None:
    """The image a step of this action runs in; None for a Dockerfile action (built by `build_dockerfile`)."""
    if action.image is not None:
        return ImageSpec(provider="action", user_image=action.image)
    manifest = action.manifest
    assert manifest is not None and action.folder is not None
    runs = manifest.runs
    if runs.image:
        return ImageSpec(provider="action", user_image=runs.image.removeprefix("docker://"))
    if runs.using == "docker":
        return None
    if runs.using != "python":  # shell, script, cmd: the job's image or the base image
        return ImageSpec(provider="action", user_image=job_image or default_image(settings))
    requirements = None
    name = runs.requirements or "requirements.txt"
    if (action.folder / name).is_file():
        requirements = (action.folder / name).read_bytes()
    elif runs.requirements:
        raise DtrunError(f"action '{manifest.name}': requirements file {name} does not exist in {action.folder}")
    return ImageSpec(provider="action-python", python_install=runs.python_install or settings.python_install or "auto",
                     requirements=requirements, gpu=gpu, tools=image_tools(manifest))  # issue 13: the SDK


def process(manifest: ActionManifest | None, values: dict[str, Any], where: str,
            context: dict[str, dict[str, Any]] | None = None) -> Process:
    """Entrypoint, command and environment of an action given its checked input values."""
    # issue 13: the runs.using contract lives in dtrun.flows.runs (python gets its inputs as JSON argv too)
    found = action_command(manifest, values, where, context=context)
    return Process(found.entrypoint, found.command, dict(found.env))


def run_shell(command: str, scope: Scope) -> Process:
    """A step's `run:`: `sh -c` with every expression passed as an environment variable."""
    script, env = render_shell(command, scope)
    return Process([], ["sh", "-ec", script], env)


def folder_tar(folder: Path) -> bytes:
    """The action's files as a tar rooted at its folder (without .git), with stable metadata."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if _SKIP & set(rel.parts) or not (path.is_file() or path.is_dir()) or path.is_symlink():
                continue
            info = tarfile.TarInfo(rel.as_posix())
            info.mtime = 0
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size, info.mode = len(data), 0o755 if path.stat().st_mode & 0o111 else 0o644
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def manifest_label(manifest: ActionManifest) -> str:
    return json.dumps(dump(manifest, by_alias=True, exclude_none=True), sort_keys=True)


def _context_files(folder: Path, dockerfile: str) -> dict[str, bytes]:
    """The action folder's files a Dockerfile build sends: what its `.dockerignore` leaves out is not read
    (a big `data/` stays on disk), not in the image's hash, and never reaches the daemon."""
    from dtrun.backends.docker.engineapi.dockerignore import context_paths

    files = {}
    for name in context_paths(folder, dockerfile):
        path = folder / name
        if path.is_file() and not path.is_symlink() and not (_SKIP & set(Path(name).parts)):
            files[name] = path.read_bytes()
    return files


def build_image(backend: Backend, action: Action, settings: Settings, *, output: Callable[[str], None],
                force_bake: bool = False) -> tuple[str, bool]:
    """The image of an action: an existing one, a Dockerfile build, or (`force_bake`, for publishing) the
    action's environment with its folder baked in at ACTION_DIR and its manifest as a label."""
    manifest, folder = action.manifest, action.folder
    assert manifest is not None and folder is not None
    runs: Runs = manifest.runs
    label = {ACTION_LABEL: manifest_label(manifest), "dev.dtrun.image": "1"}
    if runs.using == "docker" and runs.dockerfile:
        context = _context_files(folder, runs.dockerfile)
        dockerfile = (folder / runs.dockerfile)
        if not dockerfile.is_file():
            raise DtrunError(f"action '{manifest.name}': no Dockerfile {runs.dockerfile} in {folder}")
        text = dockerfile.read_text()
        context.pop(runs.dockerfile, None)
    else:
        spec = image_spec(action, settings, None)
        assert spec is not None
        base, _ = backend.ensure_image(spec, settings, output=output)
        if not force_bake:
            return base, False
        context = {"action.tar": folder_tar(folder)}
        text = f"FROM {base}\nADD action.tar {ACTION_DIR}/\n"
        if runs.using != "docker" and not any("${{" in a for a in runs.args):
            proc = process(manifest, {n: "" for n in manifest.inputs}, manifest.name)
            # issue 13: a python action's inputs JSON is not baked in: `docker run IMAGE '<inputs JSON>'`
            # appends it as the last argument, where datatorch.get_inputs() reads it
            command = (proc.command or [])[:-1] if runs.using == "python" else proc.command
            text += f"ENTRYPOINT {json.dumps(command)}\n"
        text += "WORKDIR /workspace\n"
    digest = hashlib.sha256(text.encode())
    for name in sorted(context):
        digest.update(name.encode() + b"\0" + hashlib.sha256(context[name]).digest())
    digest.update(json.dumps(label, sort_keys=True).encode())
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in manifest.name.lower()).strip("-.") or "action"
    tag = f"dtrun-action/{name}:{digest.hexdigest()[:20]}"
    if backend.image(tag) is not None:
        return tag, False
    backend.build_image(dockerfile=text, context=context, tag=tag, labels=label, output=output)
    return tag, True
