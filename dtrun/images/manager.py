"""Getting the image a job needs: found by its content tag in one API call, else built."""

from __future__ import annotations

from typing import Any

from dtrun.config import Settings
from dtrun.errors import BuildError
from dtrun.images.builder import Output, build, pick_builder
from dtrun.images.dockerfile import plan_build
from dtrun.images.probe import probe_base
from dtrun.images.spec import ImageSpec

DEFAULT_CPU_BASE = "debian:bookworm-slim"
DEFAULT_GPU_BASE = "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"


def base_image(spec: ImageSpec, settings: Settings) -> str:
    if spec.base:
        return spec.base
    if spec.gpu:
        return settings.gpu_base_image or settings.base_image or DEFAULT_GPU_BASE
    return settings.base_image or DEFAULT_CPU_BASE


def _get_or_pull(client: Any, ref: str, what: str) -> Any:
    import docker.errors

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        pass
    try:
        return client.images.pull(ref)
    except docker.errors.APIError as exc:
        raise BuildError(
            f"{what} {ref} is not on the Docker host and cannot be pulled: {exc.explanation or exc}",
            hint="pull or load it on that host, or point DTRUN_BASE_IMAGE (or `dtrun config set base_image`) "
            "at an image that is there; `make base-image` builds one offline",
        ) from None


def ensure_image(client: Any, spec: ImageSpec, settings: Settings, *, docker_host: str | None,
                 output: Output, rebuild: str = "") -> tuple[str, bool]:
    """Return (image reference, whether it was built now)."""
    if spec.user_image:
        _get_or_pull(client, spec.user_image, "image")
        return spec.user_image, False
    import docker.errors

    ref = base_image(spec, settings)
    base = _get_or_pull(client, ref, "base image")
    info = probe_base(client, ref, base.id)
    builder = pick_builder()
    plan = plan_build(spec, ref, info, buildkit=builder.buildkit, rebuild=rebuild)
    try:
        client.images.get(plan.tag)
        return plan.tag, False
    except docker.errors.ImageNotFound:
        pass
    output(f"building {plan.tag} from {ref} with {builder.describe()}")
    secrets = {}
    ca = settings.ca_bundle_path
    if ca and builder.buildkit:
        secrets["dtrun-ca"] = ca
    build(builder, client, dockerfile=plan.dockerfile, context=plan.context, tag=plan.tag, labels=plan.labels,
          build_args=plan.build_args, secrets=secrets, docker_host=docker_host, output=output)
    return plan.tag, True
