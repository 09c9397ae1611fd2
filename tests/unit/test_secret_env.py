"""Secrets as environment variables: markers become references that real shells expand to the exact value.

Every case runs the rewritten command in a real `bash` and `sh` (dash here) with the value in the
environment and compares what it printed with what the pasted text was meant to print. Values are
hostile: quotes, `$`, backquotes, backslashes, spaces, newlines, globs, `;`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dtrun.errors import DtrunError
from dtrun.secret_env import MARK, bind_argv, hide_values, script_index, variable, wrap
from dtrun.shellrefs import shell_refs

HOSTILE = 'abc"; touch /tmp/dtrun-pwned-$$; echo "'
VALUES = st.text(alphabet=st.sampled_from(list("aZ09 \t\n\"'$`\\;*?{}()|&<>#!~-=%.")), min_size=0, max_size=24)
M = "${{ secrets.T }}"


def refs(script: str) -> str:
    return shell_refs(script, MARK, lambda m: variable(m.group(1)))


def run(argv: list[str], value: str) -> str:
    env = {"PATH": os.environ["PATH"], variable("T"): value}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    return done.stdout


#: (script with the marker, what it prints for a value, the shells that understand it)
SCRIPTS: list[tuple[str, object, tuple[str, ...]]] = [
    (f'printf "%s\\n" "token={M}"', lambda v: f"token={v}\n", ("bash", "sh")),
    (f"printf '%s\\n' token={M}", lambda v: f"token={v}\n", ("bash", "sh")),
    (f"printf '%s\\n' 'a {M} b'", lambda v: f"a {v} b\n", ("bash", "sh")),
    (f"X={M}\nprintf '%s|' \"$X\" {M}", lambda v: f"{v}|{v}|", ("bash", "sh")),
    (f"# don't stop\nprintf '%s\\n' \"{M}\" # it's {M}", lambda v: f"{v}\n", ("bash", "sh")),
    (f'printf "%s\\n" "${{UNSET:-{M}}}"', lambda v: f"{v}\n", ("bash", "sh")),
    (f'printf "%s" "$(printf "%s" "x {M}")"', lambda v: f"x {v}".rstrip("\n"), ("bash", "sh")),
    (f"cat <<EOF\nv={M} \"q\" '$HOSTNAME_UNSET'\nEOF\nprintf 'after'", lambda v: f"v={v} \"q\" ''\nafter",
     ("bash", "sh")),
    (f"cat <<-'EOF'\n\tliteral $x\n\tEOF\nprintf '%s' {M}", lambda v: f"literal $x\n{v}", ("bash", "sh")),
    (f"printf '%s\\n' $'tab\\t{M}'", lambda v: f"tab\t{v}\n", ("bash",)),
    (f"case a in a) printf '%s' \"({M})\" ;; esac", lambda v: f"({v})", ("bash", "sh")),
]


@pytest.mark.parametrize("index", range(len(SCRIPTS)))
@settings(max_examples=15, deadline=None)
@given(value=VALUES)
@example(value=HOSTILE)
@example(value="")
@example(value="a\n\nb\n")
def test_a_marker_in_a_script_prints_the_value_and_runs_nothing(index: int, value: str) -> None:
    script, expected, shells = SCRIPTS[index]
    rewritten = refs(script)
    assert "secrets." not in rewritten
    for shell in shells:
        assert run([shutil.which(shell) or shell, "-c", rewritten], value) == expected(value), (shell, rewritten)  # type: ignore[operator]


def test_a_marker_in_a_quoted_here_document_is_an_error_that_says_why() -> None:
    with pytest.raises(DtrunError, match="quoted delimiter") as info:
        refs(f"cat <<'EOF'\n{M}\nEOF\n")
    assert "DTRUN_SECRET_T" in (info.value.hint or "")


def test_script_index_finds_the_script_of_dtrun_shells() -> None:
    assert script_index(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "S", "x"], 0) == 6
    assert script_index(["sh", "-ec", "S"], 0) == 2
    assert script_index(["/bin/sh", "-c", "S"], 0) == 2
    assert script_index(["python", "-c", "S"], 0) is None
    assert script_index(["bash", "script.sh"], 0) is None


@settings(max_examples=25, deadline=None)
@given(value=VALUES)
@example(value=HOSTILE)
def test_exec_form_arguments_are_wrapped_so_the_value_is_never_parsed(value: str) -> None:
    dump = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))"]
    entrypoint, command = bind_argv(dump, ["--flag", f"--token={M}", M, "a b", f"{M}{M}"],
                                    own_entrypoint=False, where="w")
    assert entrypoint is not None and command is not None
    assert entrypoint[:2] == ["/bin/sh", "-c"] and not any("secrets." in a for a in [*entrypoint, *command])
    printed = json.loads(run([*entrypoint, *command], value))
    assert printed == ["--flag", f"--token={value}", value, "a b", value + value]


def test_scripts_are_rewritten_in_place_and_plain_commands_stay_as_they_are() -> None:
    bash = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", f'echo "{M}"']
    assert bind_argv(None, bash, own_entrypoint=True, where="w") == (None, [*bash[:-1], 'echo "${DTRUN_SECRET_T}"'])
    # the docker provider: an entrypoint of the user's, the commands as its `/bin/sh -c` arguments
    entry, cmd = bind_argv(["/entry.sh"], ["/bin/sh", "-c", f"set -e\necho {M}"], own_entrypoint=False, where="w")
    assert entry == ["/entry.sh"] and cmd == ["/bin/sh", "-c", 'set -e\necho "${DTRUN_SECRET_T}"']
    assert bind_argv(["x"], ["y"], own_entrypoint=False, where="w") == (["x"], ["y"])
    # python with setup commands: the arguments after the script are wrapped, the script rewritten first
    entry, cmd = bind_argv(None, [*bash[:-1], f"echo {M}\nexec \"$@\"", "python", "t.py", M],
                           own_entrypoint=True, where="w")
    assert entry is not None and entry[0] == "/bin/sh" and cmd is not None
    assert 'echo "${DTRUN_SECRET_T}"' in cmd[6] and "secrets." not in " ".join([*entry, *cmd])


def test_an_argument_of_the_images_own_entrypoint_cannot_hold_a_secret() -> None:
    with pytest.raises(DtrunError, match="image's own ENTRYPOINT") as info:
        bind_argv(None, ["--token", M], own_entrypoint=False, where="workflow 'w'")
    assert "entrypoint:" in (info.value.hint or "")


@settings(max_examples=25, deadline=None)
@given(value=VALUES.filter(lambda v: len(v) >= 3))
@example(value=HOSTILE)
@example(value='"${')  # found by hypothesis: it is also text of the wrapper's script
def test_values_in_a_computed_argv_are_passed_as_variables(value: str) -> None:
    """A flow step's argv (a python action's inputs as JSON last) holds values, not markers."""
    dump = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))"]
    inputs = json.dumps({"token": value, "n": 1})
    entry, cmd, env = hide_values([], [*dump, f"x{value}y", inputs], {"T": value, "EMPTY": ""},
                                  own_entrypoint=True, where="step")
    assert entry is not None and cmd is not None
    # the wrapper's script is dtrun's own text (a short value such as `"${` may occur in it by chance):
    # it must hold nothing but references; every other piece must not hold the value
    assert entry[:2] == ["/bin/sh", "-c"] and re.fullmatch(r'exec( "(\$\{\w+\})+")+', entry[2]), entry[2]
    assert all(value not in a and json.dumps(value)[1:-1] not in a for a in [*entry[3:], *cmd])
    done = subprocess.run([*entry, *cmd], env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True)
    assert json.loads(done.stdout) == [f"x{value}y", inputs]
    assert hide_values(["a"], ["b"], {"T": value}, own_entrypoint=False, where="s") == (["a"], ["b"], {})


def test_wrap_refers_to_every_literal_by_position() -> None:
    entry, params = wrap(["a", f"b{M}c", "d", "e", "f", "g", "h", "i", "j", "k"])
    assert params == ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]
    assert re.search(r'"\$\{2\}\$\{DTRUN_SECRET_T\}\$\{3\}"', entry[2]) and '"${11}"' in entry[2]


def test_named_finds_the_secrets_expressions_mention() -> None:
    from dtrun.secret_env import named

    assert named([{"A": "${{ secrets.TOKEN }}"}, {"x": ["${{secrets.K_2 }}", 3]}, "secrets", None]) == {"TOKEN", "K_2"}
