"""Turning template markers in a shell script into references to environment variables.

A value from outside (a secret, a step's output) must never become shell syntax: pasted into a
`bash -c` script, `abc"; touch /workspace/pwned; echo "` ends the string it was put in and runs a
command. So a marker is replaced by a reference to a variable that holds the value, written for the
place it stands in, so that the script means what the pasted text would have meant but the shell
never parses the value:

- outside quotes (also inside `$(...)` and backquotes): `"${VAR}"`, one word, no splitting or globbing;
- inside double quotes and in a here-document with an unquoted delimiter: `${VAR}`;
- inside single quotes: `'"${VAR}"'` (the quote is closed around the reference and reopened);
- inside `$'...'`: `'"${VAR}"$'`.

A marker in a here-document whose delimiter is quoted (`<<'EOF'`) cannot become a reference, since
nothing expands there: that is a `DtrunError` saying how to write it. The scanner knows the parts of
the POSIX shell grammar that decide how text is quoted (quotes, backslashes, comments, `$(...)`,
`${...}`, backquotes, here-documents); it does not parse commands.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from dtrun.errors import DtrunError

_WORD_END = set(" \t\n;&|<>()")
#: Where a `#` starts a comment: at the start of the script or after one of these.
_COMMENT_AFTER = set(" \t\n;&|()")


def shell_refs(script: str, marker: re.Pattern[str], variable: Callable[[re.Match[str]], str]) -> str:
    """`script` with every match of `marker` replaced by a reference to the variable `variable(match)`."""
    if not marker.search(script):
        return script
    return _Scanner(script, marker, variable).run()


class _Scanner:
    def __init__(self, script: str, marker: re.Pattern[str], variable: Callable[[re.Match[str]], str]) -> None:
        self.text, self.marker, self.variable = script, marker, variable
        self.out: list[str] = []
        self.pos = 0
        #: Quoting contexts, innermost last: "top", "dq", "sq", "ansi", "sub" ($(...)), "tick", "brace".
        self.stack: list[str] = ["top"]
        self.depth: list[int] = [0]  # open parentheses in each context (for `$(` ... `)`)
        self.heredocs: list[tuple[str, bool, bool]] = []  # (delimiter, quoted, strip tabs) waiting for a newline

    # -- references ----------------------------------------------------------------------------------
    def _reference(self, match: re.Match[str]) -> str:
        name = self.variable(match)
        context = self.stack[-1]
        if context == "brace":  # ${x:-MARKER}: quoted like the expansion it is in
            context = "dq" if self.stack[-2] == "dq" else "top"
        if context == "dq":
            return "${" + name + "}"
        if context == "sq":
            return "'\"${" + name + "}\"'"
        if context == "ansi":
            return "'\"${" + name + "}\"$'"
        return '"${' + name + '}"'

    def _emit(self, text: str) -> None:
        self.out.append(text)
        self.pos += len(text)

    def _marker_here(self) -> bool:
        match = self.marker.match(self.text, self.pos)
        if not match or match.end() == self.pos:
            return False
        self.out.append(self._reference(match))
        self.pos = match.end()
        return True

    # -- scanning ------------------------------------------------------------------------------------
    def run(self) -> str:
        text = self.text
        while self.pos < len(text):
            if self._marker_here():
                continue
            context = self.stack[-1]
            char = text[self.pos]
            if context == "sq":
                self._single(char)
            elif context == "ansi":
                self._ansi(char)
            elif context == "dq":
                self._double(char)
            else:
                self._unquoted(char, context)
        return "".join(self.out)

    def _single(self, char: str) -> None:
        if char == "'":
            self.stack.pop()
        self._emit(char)

    def _ansi(self, char: str) -> None:
        if char == "\\":
            self._emit(self.text[self.pos:self.pos + 2])
            return
        if char == "'":
            self.stack.pop()
        self._emit(char)

    def _double(self, char: str) -> None:
        text = self.text
        if char == "\\":
            self._emit(text[self.pos:self.pos + 2])
        elif char == '"':
            self.stack.pop()
            self._emit(char)
        elif char == "`":
            self._push("tick", char)
        elif text.startswith("$(", self.pos):
            self._push("sub", "$(")
        elif text.startswith("${", self.pos):
            self._push("brace", "${")
        else:
            self._emit(char)

    def _unquoted(self, char: str, context: str) -> None:
        text = self.text
        if char == "\\":
            self._emit(text[self.pos:self.pos + 2])
        elif char == "'":
            self._push("sq", char)
        elif text.startswith("$'", self.pos):
            self._push("ansi", "$'")
        elif char == '"':
            self._push("dq", char)
        elif char == "`":
            if context == "tick":
                self.stack.pop()
                self.depth.pop()
                self._emit(char)
            else:
                self._push("tick", char)
        elif text.startswith("$(", self.pos):
            self._push("sub", "$(")
        elif text.startswith("${", self.pos):
            self._push("brace", "${")
        elif char == "}" and context == "brace":
            self.stack.pop()
            self.depth.pop()
            self._emit(char)
        elif char == "(":
            self.depth[-1] += 1
            self._emit(char)
        elif char == ")":
            if context == "sub" and self.depth[-1] == 0:
                self.stack.pop()
                self.depth.pop()
            else:
                self.depth[-1] = max(0, self.depth[-1] - 1)
            self._emit(char)
        elif char == "#" and (self.pos == 0 or text[self.pos - 1] in _COMMENT_AFTER):
            end = text.find("\n", self.pos)
            self._comment(len(text) if end < 0 else end)
        elif text.startswith("<<", self.pos) and not text.startswith("<<<", self.pos):
            self._heredoc_operator()
        elif char == "\n":
            self._emit(char)
            if self.heredocs:
                self._heredoc_bodies()
        else:
            self._emit(char)

    def _push(self, context: str, opener: str) -> None:
        self.stack.append(context)
        self.depth.append(0)
        self._emit(opener)

    def _comment(self, end: int) -> None:
        """A comment runs to the end of the line; a marker in it becomes a reference too (it is inert)."""
        while self.pos < end:
            if not self._marker_here():
                self._emit(self.text[self.pos])

    # -- here-documents ------------------------------------------------------------------------------
    def _heredoc_operator(self) -> None:
        text = self.text
        self._emit("<<")
        strip = text.startswith("-", self.pos)
        if strip:
            self._emit("-")
        while self.pos < len(text) and text[self.pos] in " \t":
            self._emit(text[self.pos])
        start = self.pos
        quote = ""
        while self.pos < len(text):
            char = text[self.pos]
            if quote:
                if char == quote:
                    quote = ""
            elif char in "'\"":
                quote = char
            elif char in _WORD_END:
                break
            self.pos += 1
        word = text[start:self.pos]
        self.out.append(word)
        quoted = any(c in word for c in "'\"\\")
        delimiter = word.replace("'", "").replace('"', "").replace("\\", "")
        if delimiter:
            self.heredocs.append((delimiter, quoted, strip))

    def _heredoc_bodies(self) -> None:
        """The bodies of the here-documents opened on the line that just ended, one after the other."""
        text = self.text
        for delimiter, quoted, strip in self.heredocs:
            while self.pos < len(text):
                end = text.find("\n", self.pos)
                end = len(text) if end < 0 else end + 1
                line = text[self.pos:end]
                if (line.lstrip("\t") if strip else line).rstrip("\n") == delimiter:
                    self._emit(line)
                    break
                self._heredoc_line(end, quoted, delimiter)
        self.heredocs = []

    def _heredoc_line(self, end: int, quoted: bool, delimiter: str) -> None:
        while self.pos < end:
            match = self.marker.match(self.text, self.pos)
            if match and match.end() > self.pos:
                if quoted:
                    raise DtrunError(
                        f"'{match.group(0)}' is inside a here-document with a quoted delimiter (<<'{delimiter}'), "
                        "where nothing expands, so its value cannot be passed as a variable",
                        hint=f"write <<{delimiter} (unquoted) so that it expands, or use the variable "
                             f"${self.variable(match)} in the job")
                self.out.append("${" + self.variable(match) + "}")
                self.pos = match.end()
            else:
                self._emit(self.text[self.pos])
