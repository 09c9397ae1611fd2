"""Secrets reach a job only as environment variables, never as text of its command.

`${{ secrets.NAME }}` in a job's command or entrypoint becomes a reference to the variable
`DTRUN_SECRET_NAME`, which the container gets in its environment; the command the backend records
(`docker inspect`'s `Config.Cmd` and `Config.Entrypoint`, a pod's spec) holds only the reference.

- In a shell script that dtrun or the user runs with `sh -c`/`bash -c` (the providers' scripts, an
  entrypoint like `["bash", "-c", "..."]`), the marker becomes a reference written for its quoting
  context (`dtrun.shellrefs`).
- Anywhere else (an exec-form entrypoint or argument: `args: [--token, "${{ secrets.T }}"]`), nothing
  would expand a reference, so the whole command is wrapped:
  `/bin/sh -c 'exec "${1}" "${2}" "${3}${DTRUN_SECRET_T}"' dtrun ARG1 ARG2 ARG3-LITERAL`. Every literal
  piece stays a positional parameter and the secret a variable, so no value is ever parsed by the
  shell, whatever quotes, `$`, backquotes, spaces or newlines it holds. The image needs `/bin/sh`.
  An image's own ENTRYPOINT cannot be wrapped (dtrun does not know it): a marker in the arguments of
  one is an error that says what to write instead.

Flow steps compute their commands from values, not markers: `hide_values` finds secret values in an
argv (as text, and as a JSON string holds them, for a python action's inputs argument) and passes
them the same way.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping

from dtrun.errors import DtrunError
from dtrun.shellrefs import shell_refs
from dtrun.spec.templating import secret_marker

PREFIX = "DTRUN_SECRET_"
MARK = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
SHELLS = {"sh", "bash", "dash", "ash", "zsh", "ksh"}
#: `$0` of the wrapping shell (what it names itself in its own error messages).
WRAPPER_NAME = "dtrun-secrets"
#: The pseudo-secret that holds NAME's value as a JSON string holds it (escaped, without the quotes).
_JSON = "__JSON"


def variable(name: str) -> str:
    """The environment variable that holds the secret `name` in a job."""
    return PREFIX + name


def referenced(values: list[str]) -> list[str]:
    """The secret names that markers in `values` refer to, once each, in order."""
    return list(dict.fromkeys(m.group(1) for v in values for m in MARK.finditer(v)))


def named(data: object) -> set[str]:
    """The names of every `secrets.NAME` an expression in `data` (YAML values: text, lists, mappings) mentions."""
    return set(re.findall(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)", json.dumps(data, default=str)))


def script_index(argv: list[str], start: int) -> int | None:
    """The index of the script in `argv[start:]` when it runs a shell with `-c` (`bash -eo pipefail -c S`)."""
    if start >= len(argv) or os.path.basename(argv[start]) not in SHELLS:
        return None
    index, command = start + 1, False
    while index < len(argv):
        arg = argv[index]
        if arg.startswith("--") and len(arg) > 2:
            index += 1
        elif re.fullmatch(r"[-+][A-Za-z]+", arg):
            command = command or "c" in arg
            index += 2 if "o" in arg[1:] else 1  # -o NAME takes a value
        else:
            break
    return index if command and index < len(argv) else None


def bind_argv(entrypoint: list[str] | None, command: list[str] | None, *, own_entrypoint: bool,
              where: str) -> tuple[list[str] | None, list[str] | None]:
    """`entrypoint` and `command` with every secret marker made a reference to its variable.

    `own_entrypoint`: the image has no ENTRYPOINT of its own (dtrun built it), so `entrypoint=None` runs
    `command` as it is and may be replaced by a wrapper.
    """
    head, tail = list(entrypoint or []), list(command or [])
    argv = [*head, *tail]
    if not any(MARK.search(a) for a in argv):
        return entrypoint, command
    for start in dict.fromkeys([0, len(head)]):
        found = script_index(argv, start)
        if found is not None:
            argv[found] = shell_refs(argv[found], MARK, lambda m: variable(m.group(1)))
    if not any(MARK.search(a) for a in argv):
        return (argv[:len(head)] if entrypoint is not None else None,
                argv[len(head):] if command is not None else None)
    if entrypoint is None and not own_entrypoint:
        name = referenced(argv)[0]
        raise DtrunError(f"{where}: {secret_marker(name)} is an argument of the image's own ENTRYPOINT, which dtrun "
                         "cannot wrap to pass the secret as an environment variable",
                         hint=f"give `entrypoint:` explicitly, or read the secret from ${variable(name)} "
                              f"(or declare it in `secrets:` and read ${name}) in the job")
    return wrap(argv)


def wrap(argv: list[str]) -> tuple[list[str], list[str]]:
    """A `/bin/sh -c` entrypoint that runs `argv` with each marker expanded from its variable."""
    params: list[str] = []
    words: list[str] = []

    def literal(text: str) -> str:
        params.append(text)
        return "${" + str(len(params)) + "}"

    for arg in argv:
        if not MARK.search(arg):
            words.append('"' + literal(arg) + '"')
            continue
        parts, last = [], 0
        for match in MARK.finditer(arg):
            if match.start() > last:
                parts.append(literal(arg[last:match.start()]))
            parts.append("${" + variable(match.group(1)) + "}")
            last = match.end()
        if last < len(arg):
            parts.append(literal(arg[last:]))
        words.append('"' + "".join(parts) + '"')
    return ["/bin/sh", "-c", "exec " + " ".join(words), WRAPPER_NAME], params


def hide_values(entrypoint: list[str] | None, command: list[str] | None, secrets: Mapping[str, str], *,
                own_entrypoint: bool, where: str) -> tuple[list[str] | None, list[str] | None, dict[str, str]]:
    """`entrypoint` and `command` with every secret value in them passed as a variable instead, and the
    variables to add to the job's environment (for commands built from values, as flow steps are)."""
    found: dict[str, str] = {}
    needles: list[tuple[str, str]] = []
    for name, value in secrets.items():
        if not value:
            continue
        needles.append((value, name))
        escaped = json.dumps(value)[1:-1]
        if escaped != value:
            needles.append((escaped, name + _JSON))
    if not needles:
        return entrypoint, command, {}
    needles.sort(key=lambda n: -len(n[0]))
    names = {value: name for value, name in reversed(needles)}
    pattern = re.compile("|".join(re.escape(value) for value, _ in needles))

    def one(match: re.Match[str]) -> str:
        name = names[match.group(0)]
        found[name] = match.group(0)
        return secret_marker(name)

    def mark(arg: str) -> str:
        return pattern.sub(one, arg)

    marked_entry = None if entrypoint is None else [mark(a) for a in entrypoint]
    marked_command = None if command is None else [mark(a) for a in command]
    if not found:
        return entrypoint, command, {}
    entry, cmd = bind_argv(marked_entry, marked_command, own_entrypoint=own_entrypoint, where=where)
    return entry, cmd, {variable(name): value for name, value in found.items()}
