"""What the `dtrun` process saves at its start and its end: the garbage collector waits while it starts
(`dtrun/startup.py`), only the invoked command is built (`_command_tree`), and the process exits without
the interpreter's teardown (`_finish`). What a user or a script sees stays the same: the commands, the
output, the exit code, the exit handlers' work; callers of `main` keep their own collector."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_output_still_buffered_and_exit_handlers_reach_the_pipe() -> None:
    done = python("import atexit, sys\n"
                  "atexit.register(lambda: print('handler ran'))\n"
                  "from dtrun.cli import _finish\n"
                  "print('partial line, no newline', end='')\n"
                  "sys.stderr.write('to stderr')\n"
                  "_finish(3)\n")
    assert (done.returncode, done.stdout, done.stderr) == (3, "partial line, no newlinehandler ran\n", "to stderr")


def test_a_thread_still_working_is_waited_for() -> None:
    done = python("import threading, time\n"
                  "from dtrun.cli import _finish\n"
                  "threading.Thread(target=lambda: (time.sleep(0.3), print('thread finished'))).start()\n"
                  "_finish(4)\n")
    assert (done.returncode, done.stdout) == (4, "thread finished\n")


def test_a_profiler_still_gets_its_results(tmp_path: Path) -> None:
    """`python -m cProfile -o OUT -m dtrun ...` writes OUT after the program: the normal exit is kept."""
    out = tmp_path / "dtrun.prof"
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "dtrun", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and out.stat().st_size > 0, done.stderr


def test_the_command_keeps_its_exit_codes_and_main_stays_callable() -> None:
    usage = subprocess.run([sys.executable, "-m", "dtrun", "no-such-command"], capture_output=True, text=True)
    assert usage.returncode == 2 and "No such command" in usage.stderr
    version = subprocess.run([sys.executable, "-m", "dtrun", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("dtrun ")
    # `main` called in another program's process ends with SystemExit and gives control back
    called = python("from dtrun.cli import main\n"
                    "try:\n    main(['--version'])\nexcept SystemExit as exc:\n    print('back, code', exc.code)\n")
    assert called.stdout.endswith("back, code 0\n"), called.stdout + called.stderr


def test_only_the_invoked_command_is_built() -> None:
    """Building every command costs every command's signature on each call; the invoked one is enough.
    A global option's value is not taken for a command; no command, `--help` or a typo get them all."""
    from dtrun.cli import _command_tree

    everything = set(_command_tree(["--help"]).commands)
    assert {"run", "status", "tags", "flow"} <= everything
    assert set(_command_tree(["run", "status"]).commands) == {"run"}  # a workflow named `status`
    assert set(_command_tree(["--backend", "list", "run", "x"]).commands) == {"run"}
    assert set(_command_tree(["tags", "add", "t"]).commands) == {"tags"}
    assert set(_command_tree(["stauts"]).commands) == everything  # click's "No such command" with its list
    assert set(_command_tree([]).commands) == everything


def test_a_short_command_runs_without_a_single_collection() -> None:
    done = python("import atexit, gc, sys\n"
                  "from dtrun.startup import entry\n"
                  "runs = []\n"
                  "gc.callbacks.append(lambda phase, info: runs.append(info) if phase == 'stop' else None)\n"
                  "atexit.register(lambda: print('collections', len(runs), file=sys.stderr))\n"
                  "sys.argv = ['dtrun', '--help']\n"
                  "entry()\n")
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout and "collections 0" in done.stderr, done.stderr


def test_the_collector_comes_back_with_start_ups_survivors_frozen() -> None:
    done = python("import gc, time\n"
                  "from dtrun.startup import pause_collector\n"
                  "pause_collector(0.2)\n"
                  "assert not gc.isenabled()\n"
                  "deadline = time.monotonic() + 30\n"
                  "while not gc.isenabled() and time.monotonic() < deadline:\n"
                  "    time.sleep(0.01)\n"
                  "print(gc.isenabled(), gc.get_freeze_count() > 0)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]


def test_a_collector_someone_turned_off_stays_off_and_main_leaves_it_alone() -> None:
    done = python("import gc, time\n"
                  "from dtrun.startup import pause_collector\n"
                  "gc.disable()\n"
                  "pause_collector(0.05)\n"
                  "time.sleep(0.3)\n"
                  "off = gc.isenabled()\n"
                  "gc.enable()\n"
                  "from dtrun.cli import main\n"
                  "try:\n"
                  "    main(['--version'])\n"
                  "except SystemExit:\n"
                  "    pass\n"
                  "print(off, gc.isenabled())\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["False", "True"]


def test_the_console_script_starts_there() -> None:
    pyproject = (Path(__file__).resolve().parents[3] / "pyproject.toml").read_text()
    scripts = pyproject.split("[project.scripts]", 1)[1].split("[", 1)[0]
    assert scripts.strip() == 'dtrun = "dtrun.startup:entry"'
    assert (Path(__file__).resolve().parents[3] / "dtrun" / "__main__.py").read_text().startswith(
        "from dtrun.startup import entry")
