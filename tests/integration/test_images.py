"""Real builds from the local base image (`python_install: system`) on the shared Docker daemon.

Every image built here has requirements unique to this test session, so its content tag is ours alone
and the module removes exactly those images at the end.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from tests.conftest import BASE_IMAGE, SESSION, DtrunRunner, write_files

pytestmark = pytest.mark.xdist_group("images")

HOST_CA = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
MARKER = f"dtrun-ca-marker-{SESSION}"

WORKFLOWS = """
workflows:
  - name: hello
    provider: bash
    python_install: system
    commands:
      - python -c 'import six; print("six", six.__version__)'
"""


def requirements(pin: str) -> str:
    return f"# {SESSION}\n{pin}\n"


@pytest.fixture(scope="module")
def built_tags(docker_client: Any) -> Iterator[set[str]]:
    """Tags the tests of this module built; removed at the end (they are unique to this session)."""
    tags: set[str] = set()
    yield tags
    for tag in tags:
        with contextlib.suppress(Exception):  # cleanup must never mask a test's result
            docker_client.images.remove(tag, force=True)


def image_tag(output: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith("hello: dtrun/"))
    return line.split()[1]


@pytest.fixture
def ca_bundle(tmp_path: Path) -> Path:
    """The host's CA bundle plus a comment line unique to this session, to find it anywhere it leaks."""
    if not HOST_CA.is_file():
        pytest.skip(f"no CA bundle at {HOST_CA}")
    path = tmp_path / "ca.crt"
    path.write_bytes(HOST_CA.read_bytes() + f"\n# {MARKER}\n".encode())
    return path


def test_build_reuse_layer_reuse_and_no_ca_in_any_layer(dtrun: DtrunRunner, make_project: Any, ca_bundle: Path,
                                                        docker_client: Any, built_tags: set[str]) -> None:
    project = make_project({".dtrun/workflows.yaml": WORKFLOWS, "requirements.txt": requirements("six==1.16.0")})
    env = {"DTRUN_CA_BUNDLE": str(ca_bundle)}

    first = dtrun("images", "build", "hello", cwd=project, env=env)
    assert first.code == 0, first.output
    tag = image_tag(first.stderr)
    built_tags.add(tag)
    assert "(built)" in first.stderr
    assert f"building {tag} from {BASE_IMAGE}" in first.stderr
    assert "BuildKit" in first.stderr or "buildx" in first.stderr, "the builder in use is said"
    # The CA bundle was usable: pip reached PyPI through this machine's TLS interception during the build.
    assert "Successfully installed six-1.16.0" in first.stderr

    again = dtrun("images", "build", "hello", cwd=project, env=env)
    assert again.code == 0, again.output
    assert f"hello: {tag} (up to date, nothing to build)" in again.stderr
    assert "building" not in again.stderr and "#1 " not in again.stderr

    write_files(project, {"requirements.txt": requirements("six==1.17.0")})
    changed = dtrun("images", "build", "hello", cwd=project, env=env)
    assert changed.code == 0, changed.output
    new_tag = image_tag(changed.stderr)
    built_tags.add(new_tag)
    assert new_tag != tag and "(built)" in changed.stderr
    venv_step = next(line for line in changed.stderr.splitlines() if "RUN python3 -m venv" in line)
    vertex = venv_step.split("|", 1)[1].split()[0]
    assert f"{vertex} CACHED" in changed.stderr, "the environment step must come from the cache"
    old = docker_client.images.get(tag).attrs["RootFS"]["Layers"]
    new = docker_client.images.get(new_tag).attrs["RootFS"]["Layers"]
    # Same base and venv layers; only the requirements file and its install differ.
    assert len(old) == len(new) and old[:-2] == new[:-2] and old[-1] != new[-1]
    assert docker_client.images.get(BASE_IMAGE).attrs["RootFS"]["Layers"] == new[:-3]

    # The job sees the new requirement, and nothing of the CA is left in any layer of the saved image.
    ran = docker_client.containers.run(new_tag, ["python", "-c", "import six; print(six.__version__)"],
                                       remove=True, labels={"dev.dtrun.test": SESSION})
    assert ran.decode().strip() == "1.17.0"
    scan_saved_image(docker_client.images.get(new_tag))


def scan_saved_image(image: Any) -> None:
    saved = io.BytesIO(b"".join(image.save(named=False)))
    found_layers = 0
    with tarfile.open(fileobj=saved) as outer:
        for member in outer.getmembers():
            if not member.isfile():
                continue
            data = outer.extractfile(member).read()  # type: ignore[union-attr]
            assert MARKER.encode() not in data, f"the CA bundle leaked into {member.name}"
            if member.name.endswith("layer.tar"):
                found_layers += 1
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    names = layer.getnames()
                assert not [n for n in names if "dtrun-ca" in n or n.startswith("run/secrets/")], names
    assert found_layers >= 3


def test_forced_rebuild_keeps_the_tag_and_the_caches(dtrun: DtrunRunner, make_project: Any,
                                                     docker_client: Any, built_tags: set[str]) -> None:
    project = make_project({".dtrun/workflows.yaml": WORKFLOWS, "requirements.txt": requirements("six==1.16.0")})
    first = dtrun("images", "build", "hello", cwd=project)
    assert first.code == 0, first.output
    tag = image_tag(first.stderr)
    built_tags.add(tag)
    before = docker_client.images.get(tag).id
    forced = dtrun("images", "build", "hello", "--rebuild", cwd=project)
    assert forced.code == 0, forced.output
    assert f"hello: {tag} (built)" in forced.stderr and "(forced rebuild)" in forced.stderr
    assert docker_client.images.get(tag).id != before
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(before)  # the replaced image is not left behind, untagged
    # The build argument, not --no-cache, forced it: every RUN step ran again.
    venv_step = next(line for line in forced.stderr.splitlines() if "RUN python3 -m venv" in line)
    vertex = venv_step.split("|", 1)[1].split()[0]
    assert f"{vertex} CACHED" not in forced.stderr and f"{vertex} DONE" in forced.stderr


def test_a_failing_step_shows_its_own_log(dtrun: DtrunRunner, make_project: Any) -> None:
    project = make_project({".dtrun/workflows.yaml": WORKFLOWS,
                            "requirements.txt": requirements(f"dtrun-no-such-package-{SESSION}==1.0")})
    result = dtrun("images", "build", "hello", cwd=project)
    assert result.code != 0
    assert "Traceback" not in result.output
    report = result.stderr[result.stderr.index("error:"):]
    assert "failing step:" in report and "pip install -r /opt/dtrun/requirements.txt" in report
    assert f"dtrun-no-such-package-{SESSION}" in report
    assert "error: workflow 'hello': installing its requirements.txt failed" in report
    assert "hint: fix requirements.txt" in report


def test_lookup_of_a_built_image_is_two_exact_inspects(dtrun: DtrunRunner, make_project: Any, docker_client: Any,
                                                 built_tags: set[str], monkeypatch: pytest.MonkeyPatch) -> None:

    from dtrun.backends.docker import DockerBackend
    from dtrun.config import load_settings
    from dtrun.providers import PROVIDERS, ProviderContext
    from dtrun.spec.models import Workflow

    project = make_project({".dtrun/workflows.yaml": WORKFLOWS, "requirements.txt": requirements("six==1.16.0")})
    for key in ("DTRUN_DATA_DIR", "DTRUN_STORE", "DTRUN_BASE_IMAGE", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(key, dtrun.env[key])
    workflow = Workflow.validate({"name": "hello", "provider": "bash", "python_install": "system",
                                        "commands": ["true"]})
    spec = PROVIDERS["bash"].shape(workflow, ProviderContext(project_root=project)).image
    from dtrun.backends.docker.connection import connect
    from dtrun.backends.docker.engineapi import api, transport

    calls: list[str] = []
    real_send = transport.send

    def counted(pool: Any, method: str, path: str, **kwargs: Any) -> Any:
        calls.append(path)
        return real_send(pool, method, path, **kwargs)

    monkeypatch.setattr(api, "send", counted)
    backend = DockerBackend(connect(), "unix:///var/run/docker.sock")
    tag, _ = backend.ensure_image(spec, load_settings(), output=lambda line: None)
    built_tags.add(tag)
    calls.clear()
    again, built = backend.ensure_image(spec, load_settings(), output=lambda line: None)
    assert (again, built) == (tag, False)
    # the tag's, then the base's (not a filtered image list, which walks every image on the daemon)
    base = dtrun.env["DTRUN_BASE_IMAGE"]
    assert [c.split("/", 2)[2] for c in calls] == [f"images/{tag}/json", f"images/{base}/json"], calls


def test_images_list_and_prune_touch_only_dtrun_images(dtrun: DtrunRunner, make_project: Any,
                                                        built_tags: set[str]) -> None:
    project = make_project({".dtrun/workflows.yaml": WORKFLOWS, "requirements.txt": requirements("six==1.16.0")})
    built = dtrun("images", "build", "hello", cwd=project)
    assert built.code == 0, built.output
    tag = image_tag(built.stderr)
    built_tags.add(tag)
    listed = dtrun("images", "list")
    assert listed.code == 0 and tag in listed.stdout and BASE_IMAGE not in listed.stdout
    recent = dtrun("images", "prune", "--older-than", "1h", "--dry-run")
    assert tag not in recent.stdout, "an image used a moment ago is kept"
    everything = dtrun("images", "prune", "--older-than", "0s", "--dry-run")
    assert f"would remove {tag}" in everything.stdout
    assert BASE_IMAGE not in everything.stdout and "dtrun-local/" not in everything.stdout
    bad = dtrun("images", "prune", "--older-than", "soon")
    assert bad.code == 2 and "'soon' is not a duration" in bad.stderr


def test_without_buildkit_the_legacy_builder_builds_the_mountless_variant(
        dtrun: DtrunRunner, make_project: Any, docker_client: Any, built_tags: set[str]) -> None:
    # Only a comment in the requirements: the legacy builder has no CA secret, so nothing is downloaded.
    project = make_project({".dtrun/workflows.yaml": WORKFLOWS, "requirements.txt": f"# {SESSION} legacy\n"})
    result = dtrun("images", "build", "hello", cwd=project, env={"DTRUN_BUILDER": "legacy"})
    assert result.code == 0, result.output
    tag = image_tag(result.stderr)
    built_tags.add(tag)
    assert "with legacy builder (Engine API, no BuildKit)" in result.stderr
    assert "Step 1/" in result.stderr
    labels = docker_client.images.get(tag).labels
    assert labels["dev.dtrun.python-install"] == "system" and labels["dev.dtrun.provider"] == "bash"


def test_uv_install_with_the_bases_python_needs_only_pypi(dtrun: DtrunRunner, make_project: Any,
                                                          docker_client: Any, built_tags: set[str]) -> None:
    """uv comes from PyPI; the base's python3 is the requested 3.11, so no Python is downloaded."""
    workflows = WORKFLOWS.replace("python_install: system", "python: 3.11\n    python_install: uv")
    project = make_project({".dtrun/workflows.yaml": workflows, "requirements.txt": requirements("six==1.16.0")})
    result = dtrun("images", "build", "hello", cwd=project)
    assert result.code == 0, result.output
    tag = image_tag(result.stderr)
    built_tags.add(tag)
    assert "uv pip install --python /opt/dtrun/venv/bin/python -r /opt/dtrun/requirements.txt" in result.stderr
    out = docker_client.containers.run(
        tag, ["sh", "-c", "uv --version && python -c 'import sys, six; print(sys.prefix, sys.version_info[:2], "
                          "six.__version__)'"], remove=True, labels={"dev.dtrun.test": SESSION}).decode()
    assert out.startswith("uv ") and "/opt/dtrun/venv (3, 11) 1.16.0" in out
    assert docker_client.images.get(tag).labels["dev.dtrun.python-install"] == "uv"
