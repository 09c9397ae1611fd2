"""`${{ ... }}` expressions: references (`steps.fetch.outputs.path`), literals, `==`, `!=`, `&&`, `||`, `!`
and the status functions `success()`, `failure()`, `always()`.

Two ways to use a value, so that nothing from outside is ever pasted into a shell string:
`render` substitutes text where the result is data (an input value, an argv element); `render_shell`
turns every expression of a shell command into a reference to an environment variable and returns
the values to pass as environment.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any

from dtrun.errors import DtrunError
from dtrun.structs import struct

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.DOTALL)
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*'|\"[^\"]*\")|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||!|\(|\)|,)"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_*-]+)*))")


class ExpressionError(DtrunError):
    """An expression that cannot be read or refers to something that does not exist."""


#: References that only the DataTorch server can fill (its project and the event that started a run).
#: They resolve to "" with a warning, so a published action that mentions them still runs.
SERVER_ONLY = ("event", "pipeline.projectId", "pipeline.id", "run.id", "runner.token")
_warned: set[str] = set()


def warn_once(message: str) -> None:
    """The default warning sink: one line on stderr per distinct message and process."""
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {message}", file=sys.stderr)


@struct
class Scope:
    """What expressions can see. Unknown names are errors with the list of what exists.

    DataTorch's spellings are accepted: `input.X` and `variable.X` for `inputs.X`, `steps.ID.output.X`
    for `steps.ID.outputs.X`. `context` holds the local contexts (`directory`, `machine`, `python`,
    `step`, `action`, `pipeline`, `run`; see `dtrun.flows.contexts`).
    """

    inputs: Mapping[str, Any] = field(default_factory=dict)
    steps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    jobs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    status: str = "success"
    context: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    warn: Callable[[str], None] = warn_once

    def lookup(self, ref: str) -> Any:
        parts = ref.split(".")
        head = parts[0]
        if head in ("inputs", "input", "variable") and len(parts) == 2:
            return _get(self.inputs, parts[1], "input", ref)
        if head in ("secrets", "env") and len(parts) == 2:
            return _get(self.secrets if head == "secrets" else self.env, parts[1], head[:-1] if head == "secrets"
                        else "environment variable", ref)
        if head in ("steps", "jobs") and len(parts) == 4 and parts[2] in ("outputs", "output"):
            table = self.steps if head == "steps" else self.jobs
            outputs = _get(table, parts[1], head[:-1], ref)
            return _get(outputs, parts[3], f"output of {head[:-1]} '{parts[1]}'", ref)
        if head in ("true", "false") and len(parts) == 1:
            return head == "true"
        if any(ref == s or ref.startswith(s + ".") for s in SERVER_ONLY):
            self.warn(f"'{ref}' needs the DataTorch server; it is empty when a flow runs on a Docker host")
            return ""
        if head in self.context and len(parts) == 2:
            return _get(self.context[head], parts[1], f"value in '{head}'", ref)
        raise ExpressionError(f"unknown reference '{ref}'",
                              hint="expressions can use inputs.X, steps.ID.outputs.X, jobs.ID.outputs.X, "
                              "secrets.X, env.X" + "".join(f", {c}.X" for c in self.context))


def _get(table: Mapping[str, Any], key: str, what: str, ref: str) -> Any:
    if key in table:
        return table[key]
    known = ", ".join(sorted(table)) or "none"
    raise ExpressionError(f"'{ref}': no {what} '{key}'", hint=f"known: {known}")


def evaluate(text: str, scope: Scope) -> Any:
    """The value of one expression (without the `${{ }}`)."""
    tokens = _tokenize(text)
    parser = _Parser(tokens, scope, text)
    value = parser.expr()
    if parser.pos != len(tokens):
        raise ExpressionError(f"cannot read the expression '{text}' after '{tokens[parser.pos - 1][1]}'"
                              if parser.pos else f"cannot read the expression '{text}'")
    return value


def _tokenize(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ExpressionError(f"cannot read the expression '{text}' at '{text[pos:].strip()}'",
                                  hint="strings are quoted with '...'; operators: == != && || !")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], scope: Scope, text: str) -> None:
        self.tokens, self.scope, self.text, self.pos = tokens, scope, text, 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def expr(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self.pos += 1
            right = self._and()
            left = left or right
        return left

    def _and(self) -> Any:
        left = self._cmp()
        while self._peek() == "&&":
            self.pos += 1
            right = self._cmp()
            left = left and right
        return left

    def _cmp(self) -> Any:
        left = self._unary()
        while self._peek() in ("==", "!="):
            op = self.tokens[self.pos][1]
            self.pos += 1
            right = self._unary()
            same = _loose(left) == _loose(right)
            left = same if op == "==" else not same
        return left

    def _unary(self) -> Any:
        if self._peek() == "!":
            self.pos += 1
            return not truthy(self._unary())
        return self._atom()

    def _atom(self) -> Any:
        if self.pos >= len(self.tokens):
            raise ExpressionError(f"the expression '{self.text}' ends too early")
        kind, value = self.tokens[self.pos]
        self.pos += 1
        if kind == "str":
            return value[1:-1].replace("''", "'") if value[0] == "'" else value[1:-1]
        if kind == "num":
            return float(value) if "." in value else int(value)
        if value == "(":
            inner = self.expr()
            self._expect(")")
            return inner
        if kind == "name":
            if self._peek() == "(":
                self.pos += 1
                self._expect(")")
                return self._function(value)
            return self.scope.lookup(value)
        raise ExpressionError(f"unexpected '{value}' in the expression '{self.text}'")

    def _expect(self, token: str) -> None:
        if self._peek() != token:
            raise ExpressionError(f"expected '{token}' in the expression '{self.text}'")
        self.pos += 1

    def _function(self, name: str) -> bool:
        if name == "success":
            return self.scope.status == "success"
        if name == "failure":
            return self.scope.status == "failure"
        if name == "always":
            return True
        raise ExpressionError(f"unknown function '{name}()'", hint="functions: success(), failure(), always()")


def _loose(value: Any) -> Any:
    """Outputs are text: `'3' == 3` and `'true' == true` compare equal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value not in ("", "false", "0")
    return bool(value)


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value)
    return "" if value is None else str(value)


def has_expressions(value: Any) -> bool:
    if isinstance(value, str):
        return bool(EXPR.search(value))
    if isinstance(value, list):
        return any(has_expressions(v) for v in value)
    if isinstance(value, dict):
        return any(has_expressions(v) for v in value.values())
    return False


def whole_expression(text: str) -> str | None:
    """The inside of `text` when it is exactly one `${{ }}` expression, else None. The first match must
    end at the end: `EXPR.fullmatch` would stretch `${{ a }} ${{ b }}` into one expression `a }} ${{ b`."""
    found = EXPR.match(text)
    return found.group(1) if found and found.end() == len(text) else None


def render(value: Any, scope: Scope) -> Any:
    """Substitute expressions in data. A string that is exactly one expression keeps the value's type."""
    if isinstance(value, list):
        return [render(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: render(v, scope) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    inner = whole_expression(value)
    if inner is not None:
        return evaluate(inner, scope)
    return EXPR.sub(lambda m: text_of(evaluate(m.group(1), scope)), value)


def render_shell(command: str, scope: Scope, *, input_env: Callable[[str], str] | None = None,
                 prefix: str = "DTRUN_EXPR_") -> tuple[str, dict[str, str]]:
    """A shell command whose expressions became references to environment variables, and their values.

    `inputs.X` becomes the action's own `INPUT_X` variable (via `input_env`); anything else gets a
    numbered variable. Each reference is written for its place in the script (`"${VAR}"` outside
    quotes, `${VAR}` inside double quotes, ...; see `dtrun.shellrefs`), so the values never become
    shell syntax, whatever characters they hold.
    """
    from dtrun.shellrefs import shell_refs

    env: dict[str, str] = {}

    def variable(match: re.Match[str]) -> str:
        text = match.group(1).strip()
        if input_env and re.fullmatch(r"inputs\.[A-Za-z0-9_-]+", text):
            scope.lookup(text)
            return input_env(text.split(".", 1)[1])
        name = f"{prefix}{len(env)}"
        env[name] = text_of(evaluate(text, scope))
        return name

    return shell_refs(command, EXPR, variable), env
