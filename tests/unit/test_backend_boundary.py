"""The backend boundary holds: only `dtrun/backends/docker/` knows Docker's API (issue 11), and since
issue 19 nothing in dtrun uses docker-py at all (the backend has its own client, `engineapi/`)."""

from __future__ import annotations

import re
from pathlib import Path

import dtrun

ROOT = Path(dtrun.__file__).parent
#: `import docker`, `from docker... import`, `docker.errors` in code (not in prose: `"docker"`, `docker://`, nor
#: dtrun's own `dtrun.backends.docker.errors`)
USES_DOCKER_PY = re.compile(r"^\s*(import docker\b|from docker(\.| import)\b)|(?<![.\w])docker\.(errors|types|utils)\b",
                            re.MULTILINE)


def offenders() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if USES_DOCKER_PY.search(line):
                found.append(f"{path.relative_to(ROOT.parent)}:{number}: {line.strip()}")
    return found


def test_nothing_in_dtrun_uses_docker_py() -> None:
    assert offenders() == []


def test_the_check_finds_a_use_of_docker_py(tmp_path: Path) -> None:
    """The pattern matches the forms the code base used before the boundary existed."""
    for line in ("import docker", "    import docker.errors", "from docker.types import Mount",
                 "except docker.errors.NotFound:", "from docker import DockerClient"):
        assert USES_DOCKER_PY.search(line), line
    for line in ('"docker://image"', "the docker daemon", "runs.using == \"docker\""):
        assert not USES_DOCKER_PY.search(line), line


def test_the_docker_backend_implements_the_protocol() -> None:
    from dtrun.backends.base import Backend
    from dtrun.backends.docker import DockerBackend

    backend = DockerBackend(client=None, host="unix:///nowhere")
    assert isinstance(backend, Backend)
    missing = [name for name in dir(Backend) if not name.startswith("_") and not hasattr(backend, name)]
    assert missing == []


def test_an_unknown_backend_is_a_clear_error() -> None:
    import pytest

    from dtrun.backends.registry import create_backend
    from dtrun.config import Settings
    from dtrun.errors import DtrunError

    with pytest.raises(DtrunError, match="unknown backend 'nomad'") as caught:
        create_backend(Settings(store="s", backend="nomad"))
    assert caught.value.hint and "docker" in caught.value.hint
