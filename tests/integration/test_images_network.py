"""Builds whose downloads come from beyond PyPI and the Debian mirror (GitHub, download.pytorch.org),
plus the Jupyter image, whose packages come from PyPI.

Each test runs where its hosts resolve and is skipped with the reason elsewhere (this project's own
machines reach only PyPI, Debian and npm).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import SESSION, DtrunRunner

pytestmark = [pytest.mark.xdist_group("images")]


def reachable(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


def needs(host: str, what: str) -> pytest.MarkDecorator:
    reason = f"{host} does not resolve here; the build downloads {what} from it"
    return pytest.mark.skipif(not reachable(host), reason=reason)


@pytest.fixture
def tags(docker_client: Any) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for tag in made:
        with contextlib.suppress(Exception):  # cleanup must never mask a test's result
            docker_client.images.remove(tag, force=True)


def build_and_run(dtrun: DtrunRunner, make_project: Any, docker_client: Any, tags: list[str], workflow: str,
                  check: list[str]) -> str:
    project = make_project({".dtrun/workflows.yaml": workflow, "requirements.txt": f"# {SESSION}\nsix\n"})
    result = dtrun("images", "build", "w", cwd=project, timeout=1800)
    assert result.code == 0, result.output
    tag = next(line.split()[1] for line in result.stderr.splitlines() if line.startswith("w: dtrun/"))
    tags.append(tag)
    out = docker_client.containers.run(tag, ["bash", "-c", " && ".join(check)], remove=True,
                                       labels={"dev.dtrun.test": SESSION})
    return str(out.decode())


@pytest.mark.network
@needs("github.com", "the Miniforge installer")
def test_conda_install_puts_conda_mamba_and_the_requested_python_on_path(
        dtrun: DtrunRunner, make_project: Any, docker_client: Any, tags: list[str]) -> None:
    workflow = "workflows:\n  - name: w\n    provider: bash\n    python: 3.10\n    python_install: conda\n" \
               "    commands: [python --version]\n"
    out = build_and_run(dtrun, make_project, docker_client, tags, workflow,
                        ["conda --version", "mamba --version", "python --version", "python -c 'import six'"])
    assert "conda " in out and "Python 3.10." in out


@pytest.mark.network
@needs("github.com", "uv's Python builds (python-build-standalone)")
def test_uv_install_gives_the_requested_python(dtrun: DtrunRunner, make_project: Any, docker_client: Any,
                                               tags: list[str]) -> None:
    workflow = "workflows:\n  - name: w\n    provider: bash\n    python: 3.12\n    python_install: uv\n" \
               "    commands: [python --version]\n"
    out = build_and_run(dtrun, make_project, docker_client, tags, workflow,
                        ["uv --version", "python --version", "python -c 'import six'"])
    assert "uv " in out and "Python 3.12." in out


@pytest.mark.network
@needs("download.pytorch.org", "torch's CPU and CUDA wheels")
def test_torchrun_image_has_torch(dtrun: DtrunRunner, make_project: Any, docker_client: Any,
                                  tags: list[str]) -> None:
    workflow = "workflows:\n  - name: w\n    provider: torchrun\n    python_install: system\n    file: t.py\n"
    out = build_and_run(dtrun, make_project, docker_client, tags, workflow,
                        ["torchrun --help >/dev/null", "python -c 'import torch; print(torch.__version__)'"])
    assert "+cpu" in out


@pytest.mark.network
@needs("registry.npmjs.org", "code-server and its Node")
def test_code_image_has_code_server(dtrun: DtrunRunner, make_project: Any, docker_client: Any,
                                    tags: list[str]) -> None:
    workflow = "workflows:\n  - name: w\n    provider: code\n    python_install: system\n"
    out = build_and_run(dtrun, make_project, docker_client, tags, workflow, ["code-server --version"])
    assert out.strip()


def test_lab_image_has_jupyterlab_preinstalled(dtrun: DtrunRunner, make_project: Any, docker_client: Any,
                                               tags: list[str]) -> None:
    """JupyterLab comes from PyPI, which this project's machines reach; it is part of the image."""
    workflow = "workflows:\n  - name: w\n    provider: lab\n    python_install: system\n"
    out = build_and_run(dtrun, make_project, docker_client, tags, workflow,
                        ["jupyter lab --version", "python -c 'import six'"])
    assert out.strip().splitlines()[0].startswith("4.")
