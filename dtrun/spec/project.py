"""Finding the project: the git repository and the folder holding `.dtrun/` or `.dstack/`."""

from __future__ import annotations

from pathlib import Path

from dtrun.code.listing import find_git_root
from dtrun.errors import ProjectError
from dtrun.structs import struct

SPEC_DIRS = (".dtrun", ".dstack")


@struct(frozen=True)
class Project:
    """A project folder inside a git repository.

    `root` is the nearest folder (from the current one up to the repository's top) that holds
    `.dtrun/` or `.dstack/`; it is what the job sees as its working directory. In a plain repository it
    is the repository's top; in a monorepo it is the sub-project.
    """

    git_root: Path
    root: Path

    @property
    def spec_dirs(self) -> list[Path]:
        return [self.root / d for d in SPEC_DIRS if (self.root / d).is_dir()]




def find_project(start: Path | None = None) -> Project:
    """Locate the project from `start` (default: the current folder), or say clearly why not."""
    here = (start or Path.cwd()).resolve()
    git_root = find_git_root(here)
    if git_root is None:
        raise ProjectError(
            f"{here} is not inside a git repository",
            hint="dtrun tracks your code with git: run it inside your project's repository (or `git init` one)",
        )
    for folder in (here, *here.parents):
        if any((folder / d).is_dir() for d in SPEC_DIRS):
            return Project(git_root=git_root, root=folder)
        if folder == git_root:
            break
    raise ProjectError(
        f"no workflows found: neither .dtrun/ nor .dstack/ exists in {here} or above it up to {git_root}",
        hint="create .dtrun/workflows.yaml (see `dtrun schema` for the format)",
    )
