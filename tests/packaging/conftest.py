"""dtrun as a newcomer gets it: the wheel built with `python -m build`, installed into a brand-new venv.

The development venv holds every extra and every test tool, which hid a missing runtime dependency
(click came in through moto's flask). These fixtures build the wheel once per test session and install
it into empty venvs (no pip, no setuptools, nothing but the wheel and what it declares), so a package
dtrun imports without declaring it fails here as it fails for a user. pip's own cache is reused, so only
the first session on a machine downloads anything.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import BASE_IMAGE, Result, remove_labelled

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, as `python -m build --wheel` makes it."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO_ROOT)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"python -m build failed:\n{proc.stdout}\n{proc.stderr}"
    wheels = list(out.glob("dtrun-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@dataclass
class Installed:
    """A venv holding only the dtrun wheel (with the given extras) and its declared dependencies."""

    venv: Path
    home: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    @property
    def store(self) -> Path:
        return self.home / "store"

    def env(self, **extra: str) -> dict[str, str]:
        """A user's environment: this venv first on PATH, nothing of the checkout importable."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DTRUN_", "PYTHON", "VIRTUAL_ENV", "PYTEST", "COV_"))}
        env.update(PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}",
                   XDG_CONFIG_HOME=str(self.home / "config"), DTRUN_STORE=str(self.store),
                   DTRUN_DATA_DIR=str(self.home / "data"), DTRUN_BASE_IMAGE=BASE_IMAGE, NO_COLOR="1",
                   COLUMNS="200", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                   GIT_COMMITTER_EMAIL="t@t")
        env.update(extra)
        return env

    def dtrun(self, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> Result:
        proc = subprocess.run([str(self.bin / "dtrun"), *args], cwd=cwd, capture_output=True, text=True,
                              env=env or self.env(), timeout=timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def cleanup(self, store_url: str | None = None) -> None:
        url = store_url or str(self.store)
        remove_labelled("dev.dtrun.store", hashlib.sha256(url.encode()).hexdigest()[:12])


def install(wheel: Path, root: Path, extras: str = "") -> Installed:
    """Make an empty venv (no pip inside) and let the development pip install the wheel into it."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    spec = f"{wheel}[{extras}]" if extras else str(wheel)
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                           "--quiet", "--no-input", spec], capture_output=True, text=True)
    assert proc.returncode == 0, f"pip install {spec} failed:\n{proc.stdout}\n{proc.stderr}"
    home = root / "home"
    home.mkdir()
    return Installed(venv=venv, home=home)


@pytest.fixture(scope="session")
def plain_install(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """`pip install dtrun` with no extras."""
    installed = install(wheel, tmp_path_factory.mktemp("plain"))
    yield installed
    installed.cleanup()


def make_repo(root: Path, files: dict[str, str]) -> Path:
    """A throwaway git repository holding `files`, committed."""
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, env=env)
    return root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """One worker builds the wheel and the venvs once (make test runs with --dist loadgroup)."""
    for item in items:
        if "/packaging/" in str(item.fspath):
            item.add_marker(pytest.mark.xdist_group("packaging"))
            item.add_marker(pytest.mark.docker)
