"""Which properties each provider takes and which it needs.

The models accept the union of all properties; this table says which of them mean something for a
given provider, so that `nodes: 2` on a bash workflow is an error at its line rather than a setting
that is silently ignored. The table belongs to the workflow language, not to the provider modules:
a provider this build cannot run is still a valid workflow to list, validate and describe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dtrun.errors import SpecError
from dtrun.spec.errors import did_you_mean
from dtrun.spec.models import PROVIDER_NAMES
from dtrun.spec.yamlpos import Document, PathKey
from dtrun.structs import struct

COMMON = ("name", "provider", "help", "deps", "depends-on", "env", "environment", "working_dir", "artifacts",
          "resources", "ports", "cache", "secrets", "ssh", "before_run", "repo_include", "depends_variables")
#: Dev environments: `setup` runs before the app starts; `version` is the app's (see `models`).
DEV = ("setup", "tool_version")
PYTHON_ENV = ("python", "version", "python_install", "requirements", "cuda")
SCRIPT = ("file", "script", "python_script", "args")

#: provider -> (required properties, every allowed property).
PROVIDER_PROPERTIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bash": (("commands",), (*COMMON, *PYTHON_ENV, "commands")),
    "python": (("file",), (*COMMON, *PYTHON_ENV, *SCRIPT, "commands")),
    "docker": (("image",), (*COMMON, "image", "entrypoint", "registry_auth", "commands", "provider_data")),
    "torchrun": (("file",), (*COMMON, *PYTHON_ENV, *SCRIPT, "commands", "nodes", "nproc_per_node")),
    "lab": ((), (*COMMON, *PYTHON_ENV, *DEV, "commands")),
    "notebook": ((), (*COMMON, *PYTHON_ENV, *DEV, "commands")),
    "code": ((), (*COMMON, *PYTHON_ENV, *DEV, "commands")),
}
assert set(PROVIDER_PROPERTIES) == set(PROVIDER_NAMES)

#: Names the historical forms are rewritten into (`spec.legacy`), not written by users: not shown in hints.
INTERNAL = ("repo_include", "depends_variables", "provider_data", "tool_version")

#: Earlier names that also satisfy a required property.
ALIASES = {"file": ("script", "python_script")}

ALL_PROPERTIES = tuple(sorted({p for _, allowed in PROVIDER_PROPERTIES.values() for p in allowed}))

_NEEDS_HINT = {
    "commands": "add `commands:` with the shell commands to run",
    "file": "add `file: train.py` (the script to run, relative to the project folder)",
    "image": "add `image: <name>:<tag>` (the image to run as it is)",
}


def provider_of(item: Mapping[str, Any]) -> Any:
    """The provider a workflow names; the older form (an `image` and no provider) means docker."""
    if "provider" not in item and "image" in item:
        return "docker"
    return item.get("provider")


@struct(frozen=True)
class Checked:
    """A workflow mapping without its offending properties, so that type checking can still report
    everything else at once; `provider_ok` is false when the provider is missing or unknown (its
    properties cannot be checked then)."""

    item: dict[str, Any]
    errors: list[SpecError]
    provider_ok: bool


def check_properties(item: dict[str, Any], doc: Document, path: PathKey) -> Checked:
    """Check the provider and the property names of one workflow mapping."""
    errors: list[SpecError] = []
    provider = provider_of(item)
    choices = ", ".join(PROVIDER_NAMES)
    if provider is None:
        errors.append(SpecError("missing required property 'provider'", position=doc.position(path),
                                hint=f"providers: {choices}"))
        return Checked({k: v for k, v in item.items() if k in ALL_PROPERTIES}, errors, False)
    if not isinstance(provider, str) or provider not in PROVIDER_NAMES:
        shown = provider if isinstance(provider, str) else repr(provider)
        errors.append(SpecError(f"unknown provider '{shown}'", position=doc.position((*path, "provider")),
                                hint=did_you_mean(str(provider), PROVIDER_NAMES) + f"providers: {choices}"))
        return Checked({k: v for k, v in item.items() if k in ALL_PROPERTIES and k != "provider"}, errors, False)
    required, allowed = PROVIDER_PROPERTIES[provider]
    kept: dict[str, Any] = {}
    for key, value in item.items():
        if key in allowed:
            kept[key] = value
            continue
        position = doc.key_position((*path, key))
        valid = ", ".join(sorted(set(allowed) - set(INTERNAL)))
        if key in ALL_PROPERTIES:
            owners = [p for p, (_, props) in PROVIDER_PROPERTIES.items() if key in props]
            errors.append(SpecError(f"property '{key}' does not apply to provider '{provider}'",
                                    position=position,
                                    hint=f"'{key}' is a property of: {', '.join(owners)}; "
                                         f"valid properties for {provider}: {valid}"))
        else:
            visible = [a for a in allowed if a not in INTERNAL]
            errors.append(SpecError(f"unknown property '{key}'", position=position,
                                    hint=did_you_mean(str(key), visible) + f"valid properties for {provider}: {valid}"))
    for key in required:
        if not any(item.get(k) not in (None, "", []) for k in (key, *ALIASES.get(key, ()))):
            errors.append(SpecError(f"provider '{provider}' needs '{key}'", position=doc.position(path),
                                    hint=_NEEDS_HINT.get(key)))
    return Checked(kept, errors, True)
