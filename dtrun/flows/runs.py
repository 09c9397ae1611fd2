"""How a step of an action becomes a command and environment in its container (DataTorch's `runs.using`).

Pure functions, called by whatever runs steps (today `flows.process.process`, after the one-engine work
the shared engine), so the contract with published actions lives in one place:

- `python`: `python3 <main> [args...] '<inputs JSON>'`. DataTorch's SDK (`datatorch.get_inputs()`) reads
  the inputs from the last argument, so the JSON goes last; the image carries the SDK (`SDK_TOOL`).
- `shell`/`script`: the file `script` (arguments may follow its path), executed if it is executable,
  else read by `sh`; `shell` with dtrun's `command` and `cmd`/`commandline` run `command` with `sh -c`,
  every `${{ }}` turned into an environment variable reference (never pasted into shell text).
- `docker`: the image's own entrypoint, or `runs.entrypoint`, with `runs.args`.

Every kind also gets each input as `INPUT_<NAME>`, and the variables the manifest's `env` names, from
`--secret` or the host's environment (`declared_env`).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Any

from dtrun.errors import SpecError
from dtrun.flows.contexts import ACTION_DIR, action_context, local_context, machine_name
from dtrun.flows.expressions import Scope, render, render_shell, text_of, warn_once
from dtrun.flows.inputs import env_name, input_env
from dtrun.flows.models import ActionManifest
from dtrun.structs import struct

if TYPE_CHECKING:
    from dtrun.flows.actions import Action

#: The image tool (see `dtrun.images.spec.TOOLS`) that installs DataTorch's SDK from PyPI in its own layer.
SDK_TOOL = "datatorch"
_RUN_FILE = 'if [ -x "$0" ]; then exec "$0" "$@"; else exec sh "$0" "$@"; fi'


@struct(frozen=True)
class Command:
    """What the container runs: `entrypoint` ([] clears the image's), `command`, extra environment."""

    entrypoint: list[str] | None
    command: list[str] | None
    env: dict[str, str] = field(default_factory=dict)


def step_context(flow: str, run: str, step_id: str, step_name: str | None, action: Action | None,
                 docker_host: str | None) -> dict[str, dict[str, Any]]:
    """The local contexts (`dtrun.flows.contexts`) of one step of an action."""
    about: dict[str, Any] = {}
    if action is not None:
        manifest = action.manifest
        about = action_context(manifest.name if manifest else action.ref.text, tag=action.ref.tag,
                               description=manifest.description if manifest else None)
    return local_context(flow=flow, run=run, step_id=step_id, step_name=step_name, action=about,
                         machine=machine_name(docker_host))


def image_tools(manifest: ActionManifest | None) -> tuple[str, ...]:
    """Tools the generated image of a step needs: the SDK for every `python` action."""
    return (SDK_TOOL,) if manifest is not None and manifest.runs.using == "python" else ()


def action_command(manifest: ActionManifest | None, values: dict[str, Any], where: str, *,
                   context: Mapping[str, Mapping[str, Any]] | None = None) -> Command:
    """The command of an action given its checked input values (`inputs.check_inputs`)."""
    env = input_env(values, where)
    if manifest is None:  # a plain image: its own entrypoint, inputs as environment
        return Command(None, None, env)
    scope = Scope(inputs=values, context=dict(context or {}))
    runs = manifest.runs
    env.update({k: text_of(render(v, scope)) for k, v in runs.env.items()})
    args = [text_of(render(a, scope)) for a in runs.args]
    using = runs.using
    if using in ("shell", "script") and runs.script:
        path, _, rest = text_of(render(runs.script, scope)).strip().strip("/").partition(" ")
        try:
            script_args = shlex.split(rest)
        except ValueError as exc:
            raise SpecError(f"{where}: cannot read the arguments of runs.script '{runs.script}': {exc}",
                            hint="quote arguments after the script's path as a shell would") from None
        return Command([], ["sh", "-c", _RUN_FILE, f"{ACTION_DIR}/{path}", *script_args, *args], env)
    if using in ("shell", "cmd", "commandline"):
        assert runs.command is not None
        script, extra = render_shell(runs.command, scope, input_env=env_name)
        env.update(extra)
        return Command([], ["sh", "-c", script, manifest.name, *args], env)
    if using == "python":
        assert runs.main is not None
        main = runs.main.strip().strip("/")
        return Command([], ["python3", f"{ACTION_DIR}/{main}", *args, json.dumps(values)], env)
    return Command(runs.entrypoint, args or None, env)


def declared_env(manifest: ActionManifest, secrets: Mapping[str, str], environ: Mapping[str, str], *,
                 warn: Callable[[str], None] = warn_once) -> dict[str, str]:
    """Values of the variables the manifest's `env` names: `--secret NAME=...` first, then the host's
    environment. A name with neither is left unset, with a warning that says how to give it."""
    out: dict[str, str] = {}
    for name, spec in manifest.env.items():
        if name in secrets:
            out[name] = secrets[name]
        elif name in environ:
            out[name] = environ[name]
        else:
            about = f" ({spec.description})" if spec.description else ""
            warn(f"action '{manifest.name}' reads ${name}{about}, which is not set; pass `--secret {name}=...` "
                 f"or export {name}")
    return out


def cache_enabled(manifest: ActionManifest | None, step_cache: bool | None) -> bool:
    """DataTorch's rule: the step's `cache:` when it says one, else the action's."""
    if step_cache is not None:
        return step_cache
    return bool(manifest and manifest.cache)


def cache_key(action: str, tag: str | None, values: Mapping[str, Any]) -> str:
    """What identifies a cached result: the action (its git URL or folder) at its tag and its inputs."""
    import hashlib

    text = f"{action}@{tag or ''}+{json.dumps(values, sort_keys=True, default=str)}"
    return hashlib.sha256(text.encode()).hexdigest()
