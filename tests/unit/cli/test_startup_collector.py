"""The command's process pauses the garbage collector while it starts (dtrun/startup.py): a short
command collects nothing, a long one gets the collector back, and callers of `main` keep theirs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


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
