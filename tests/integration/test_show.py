"""What dtrun would build or create, shown without doing it: `images build --dockerfile`, `run --dry-run`."""

from __future__ import annotations

from typing import Any

from tests.conftest import DtrunRunner

WORKFLOWS = ("workflows:\n  - name: prep\n    provider: bash\n    commands: [echo prep]\n"
             "  - name: train\n    provider: bash\n    depends-on: [prep]\n    commands: [echo train]\n"
             "  - name: pinned\n    provider: docker\n    image: dtrun-local/busybox:latest\n    commands: ['true']\n")


def test_images_build_dockerfile_prints_each_image_once_and_builds_nothing(
        dtrun: DtrunRunner, make_project: Any, docker_client: Any) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS})
    shown = dtrun("images", "build", "train", "--dockerfile", cwd=root)
    assert shown.code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("# prep: dtrun/bash:") and lines[1].startswith("FROM ")
    assert "# train: the same image as prep" in lines
    tag = lines[0].split()[2].rstrip(",")
    built = dtrun("images", "build", "train", cwd=root, timeout=900)
    assert built.code == 0, built.output
    assert f"prep: {tag} (" in built.output  # the Dockerfile shown is the one the build uses (same tag)
    user = dtrun("images", "build", "pinned", "--dockerfile", cwd=root)
    assert user.stdout == "# pinned: runs the image dtrun-local/busybox:latest as it is (nothing is built)\n\n"


def test_images_build_dockerfile_refuses_rebuild(dtrun: DtrunRunner, make_project: Any) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS})
    both = dtrun("images", "build", "train", "--dockerfile", "--rebuild", cwd=root)
    assert both.code != 0 and "Traceback" not in both.output
    assert "--dockerfile prints what would be built; --rebuild builds" in both.output
