"""The boundary a new backend plugs into: one folder under dtrun/backends/ plus one registry line.

Nothing outside a backend's own folder imports it (the registry names it as a string), and the engine
chooses between the container path and the agent path by protocol, never by a backend's name.
"""

from __future__ import annotations

import re
from pathlib import Path

import dtrun
from dtrun.backends.registry import BACKENDS

ROOT = Path(dtrun.__file__).parent


def test_no_module_outside_a_backend_imports_it() -> None:
    offenders = []
    for name in BACKENDS:
        if name == "docker":  # the Docker backend's own check: tests/unit/test_backend_boundary.py
            continue
        own = ROOT / "backends" / name
        pattern = re.compile(rf"^\s*(from|import) dtrun\.backends\.{name}\b", re.MULTILINE)
        for path in ROOT.rglob("*.py"):
            if own not in path.parents and pattern.search(path.read_text()):
                offenders.append(str(path.relative_to(ROOT.parent)))
    assert offenders == []


def test_the_engine_names_no_backend_in_its_code() -> None:
    names = "|".join(n for n in BACKENDS if n != "docker")
    pattern = re.compile(rf"['\"]({names})['\"]|\.backends\.({names})\b")
    offenders = [f"{p.relative_to(ROOT.parent)}:{i}" for p in (ROOT / "engine").rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []
