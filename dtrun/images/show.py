"""What an image would contain, without building it: `dtrun images build WF --dockerfile`.

The Dockerfile depends on the base image (its Python, its package manager), so the base is looked up
(pulled if missing) and probed as for a build, with the same cached probe; nothing else is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dtrun.structs import struct

if TYPE_CHECKING:
    from dtrun.config import Settings
    from dtrun.images.host import ImageHost
    from dtrun.images.spec import ImageSpec


@struct(frozen=True)
class Shown:
    """The image a job gets: its content tag and base, and the Dockerfile that builds it (None: a user's
    image, run as it is)."""

    tag: str
    base: str | None
    reason: str | None
    dockerfile: str | None

    def text(self, workflow: str) -> str:
        if self.dockerfile is None:
            return f"# {workflow}: runs the image {self.tag} as it is (nothing is built)\n"
        why = f" ({self.reason})" if self.reason else ""
        return f"# {workflow}: {self.tag}, from {self.base}{why}\n{self.dockerfile.rstrip()}\n"


def generated_dockerfile(host: ImageHost, spec: ImageSpec, settings: Settings, *, driver_version: str | None) -> Shown:
    """The Dockerfile `ensure_image` would build for `spec` on `host` (with the builder it would pick)."""
    from dtrun.images import cuda as cuda_table
    from dtrun.images.builder import pick_builder
    from dtrun.images.dockerfile import plan_build
    from dtrun.images.manager import PLATFORM, _get_or_pull, base_image
    from dtrun.images.probe import probe_base

    if spec.user_image:
        return Shown(spec.user_image, None, None, None)
    choice = base_image(spec, settings, driver_version)
    if choice.cuda:
        cuda_table.check_cuda_supported(choice.cuda, driver_version)
    base = _get_or_pull(host, choice.ref, "base image")
    info = probe_base(host, choice.ref, base.id)
    plan = plan_build(spec, choice.ref, info, buildkit=pick_builder().buildkit, platform=PLATFORM, cuda=choice.cuda)
    return Shown(plan.tag, choice.ref, choice.reason, plan.dockerfile)
