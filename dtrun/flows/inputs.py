"""Checking a step's inputs against its action's declared types, and naming their `INPUT_*` variables.

Run before any container starts for every input whose value is known then; inputs computed from
earlier steps' outputs are checked again (same function) right before their step runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from dtrun.errors import Position, SpecError
from dtrun.flows.expressions import Scope, has_expressions, render, warn_once
from dtrun.flows.models import ActionInput, ActionManifest
from dtrun.spec.errors import did_you_mean


class InputError(SpecError):
    """A step's input does not fit what its action declares."""


def env_name(name: str) -> str:
    """`batch-size` -> `INPUT_BATCH_SIZE`: upper-cased, anything but letters and digits becomes `_`."""
    return "INPUT_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def _coerce(name: str, spec: ActionInput, value: Any, where: str) -> Any:
    kind = spec.type
    bad = InputError(f"{where}: input '{name}' must be {'an' if kind[0] in 'aei' else 'a'} {kind}, "
                     f"got {json.dumps(value) if not isinstance(value, str) else repr(value)}")
    if kind == "string":
        if isinstance(value, (dict, list)):
            raise bad
        return value if isinstance(value, str) else _text(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise bad
    if kind == "integer":
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        raise bad
    if kind == "float":
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(value) if isinstance(value, str) else _raise(bad)
        except ValueError:
            raise bad from None
    if isinstance(value, list):  # `array` and DataTorch's `list`
        return value
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            raise bad from None
        if isinstance(decoded, list):
            return decoded
    raise bad


def _raise(error: Exception) -> Any:
    raise error


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return getattr(value, "raw", None) or str(value)


def check_inputs(manifest: ActionManifest, given: dict[str, Any], *, where: str,
                 positions: dict[str, Position] | None = None, pending: set[str] | None = None,
                 scope: Scope | None = None, warn: Callable[[str], None] = warn_once) -> dict[str, Any]:
    """Typed inputs with defaults filled in; `pending` names inputs whose value is not known yet.

    A default holding `${{ }}` is rendered with `scope` (plus the inputs known so far, as DataTorch's
    agent did); without a scope (checking before anything runs) such a default is left out.
    A given input whose declaration has a `deprecationMessage` is reported through `warn`.
    """
    positions = positions or {}
    pending = pending or set()
    errors: list[InputError] = []
    out: dict[str, Any] = {}
    for name, value in given.items():
        if name not in manifest.inputs:
            errors.append(InputError(
                f"{where}: action '{manifest.name}' has no input '{name}'", position=positions.get(name),
                hint=did_you_mean(name, manifest.inputs) + f"inputs: {', '.join(manifest.inputs) or 'none'}"))
            continue
        if name in pending:
            continue
        spec = manifest.inputs[name]
        if spec.deprecation_message:
            warn(f"{where}: input '{name}' of action '{manifest.name}' is deprecated: {spec.deprecation_message}")
        try:
            value = _coerce(name, spec, value, where)
            if spec.options is not None and value not in spec.options:
                raise InputError(f"{where}: input '{name}' must be one of "
                                 f"{', '.join(json.dumps(o) for o in spec.options)}, got {json.dumps(value)}")
        except InputError as exc:
            errors.append(InputError(exc.message, position=positions.get(name)))
            continue
        out[name] = value
    for name, spec in manifest.inputs.items():
        if name in given:
            continue
        if spec.default is not None:
            default = spec.default
            if has_expressions(default):
                if scope is None:
                    continue
                default = render(default, replace(scope, inputs={**given, **out}))
            try:
                out[name] = _coerce(name, spec, default, f"action '{manifest.name}' (default)")
            except InputError as exc:
                errors.append(InputError(exc.message, hint="fix the default in action-datatorch.yaml or give "
                                         f"the input '{name}' in the step"))
        elif spec.required:
            errors.append(InputError(f"{where}: action '{manifest.name}' needs the input '{name}'",
                                     hint=f"add `{name}: ...` under the step's `inputs`"
                                     + (f" ({spec.description})" if spec.description else "")))
    if errors:
        if len(errors) == 1:
            raise errors[0]
        from dtrun.spec.errors import SpecErrors

        raise SpecErrors(list(errors))
    return out


def input_env(values: dict[str, Any], where: str) -> dict[str, str]:
    """`INPUT_*` variables; two inputs that map to one variable are an error."""
    env: dict[str, str] = {}
    owner: dict[str, str] = {}
    for name, value in values.items():
        key = env_name(name)
        if key in owner:
            raise InputError(f"{where}: inputs '{owner[key]}' and '{name}' both become {key}",
                             hint="rename one of them in action-datatorch.yaml")
        owner[key] = name
        if isinstance(value, bool):
            env[key] = "true" if value else "false"
        elif isinstance(value, (list, dict)):
            env[key] = json.dumps(value)
        else:
            env[key] = "" if value is None else _text(value)
    return env


def check_env_names(manifest: ActionManifest, where: str) -> None:
    input_env({name: "" for name in manifest.inputs}, where)
