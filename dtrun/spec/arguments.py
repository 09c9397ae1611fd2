"""The arguments after `dtrun run WORKFLOW`: variable overrides, `--help`, and the rest (`${{ run.args }}`).

`dtrun run train --batch-size 32 -l 'Hello, world!'` sets the variable `batch-size` (declared in
variables.yaml) and leaves `-l 'Hello, world!'` as the run's arguments. Everything after `--` is an
argument, never a variable or `--help`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field

from dtrun.errors import DtrunError
from dtrun.spec.variables import Variable
from dtrun.structs import struct


@struct
class RunArguments:
    variables: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    help: bool = False


def _lookup(flag: str, names: Iterable[str]) -> str | None:
    names = list(names)
    if flag in names:
        return flag
    normal = flag.replace("_", "-")
    matches = [n for n in names if n.replace("_", "-") == normal]
    return matches[0] if len(matches) == 1 else None


def parse_run_arguments(tokens: Sequence[str], declared: Iterable[str], *, verbatim: int = 0) -> RunArguments:
    """Split `tokens` into variable overrides and run arguments; the last `verbatim` tokens came after
    `--` and are arguments whatever they look like."""
    names = list(declared)
    out = RunArguments()
    parsed = list(tokens[: len(tokens) - verbatim]) if verbatim else list(tokens)
    index = 0
    while index < len(parsed):
        token = parsed[index]
        index += 1
        if token in ("--help", "-h"):
            out.help = True
            continue
        if not token.startswith("--") or len(token) == 2:
            out.args.append(token)
            continue
        flag, sep, value = token[2:].partition("=")
        name = _lookup(flag, names)
        if name is None:
            out.args.append(token)
            continue
        if not sep:
            if index >= len(parsed):
                raise DtrunError(f"variable --{flag} needs a value",
                                 hint=f"write --{flag} VALUE or --{flag}=VALUE")
            value = parsed[index]
            index += 1
        out.variables[name] = value
    out.args.extend(tokens[len(tokens) - verbatim :] if verbatim else [])
    return out


def variables_help(workflow: str, help_text: str | None, variables: Mapping[str, Variable],
                   prog: str = "dtrun run") -> str:
    """`dtrun run WORKFLOW --help`: the workflow's variables with their defaults (seed 003's form)."""
    metas = {name: name.upper().replace("-", "_") for name in variables}
    usage = " ".join(f"[--{name} [{meta}]]" for name, meta in metas.items())
    lines = [f"usage: {prog} {workflow} {usage + ' ' if usage else ''}[ARGS...]".rstrip(), ""]
    if help_text:
        lines += [help_text.strip(), ""]
    if variables:
        width = max(len(n) for n in variables) + 2
        meta_width = max(len(m) for m in metas.values()) + 2
        lines.append("variables (environment variables of the job, and ${{ name }} in the workflow):")
        for name, variable in variables.items():
            meta = f"[{metas[name]}]"
            default = variable.default or "''"
            lines.append(f"  --{name:<{width}} {meta:<{meta_width + 2}} default is {default}")
    else:
        lines.append("this workflow declares no variables (they are set in .dtrun/variables.yaml or "
                     ".dstack/variables.yaml)")
    lines += ["", "other arguments, and everything after --, are the run's arguments: ${{ run.args }}"]
    return "\n".join(lines)
