"""Getting the image a job needs: found by its content tag in two exact inspects, else built.

The tag is a hash of everything that builds the image, including the base image's id, which takes a
base lookup and a probe to know. To keep the common case (the image exists) to two cheap API calls, the
tag computed for a spec is remembered on disk together with the base id it was computed from; the next
lookup inspects the tag and the base by name (`known_image`): the tag must still exist and the base must
still have that id. Anything else (base moved, image removed, first time) takes the full path: base,
probe, render, hash, build.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

from dtrun.backends.base import ImageInfo
from dtrun.cachefile import cache_path, read_json, write_json
from dtrun.config import Settings
from dtrun.errors import REFERENCE_HINT, BuildError, DtrunError, InvalidReference
from dtrun.images import record
from dtrun.images.builder import Builder, Output, build, pick_builder
from dtrun.images.host import ImageHost
from dtrun.images.spec import ImageSpec
from dtrun.images.templates import fingerprint
from dtrun.structs import struct

DEFAULT_CPU_BASE = "debian:bookworm-slim"
PLATFORM = "linux/amd64"


@struct(frozen=True)
class BaseChoice:
    ref: str
    cuda: str | None = None
    reason: str = ""


def base_image(spec: ImageSpec, settings: Settings, driver_version: str | None = None) -> BaseChoice:
    """The base of a generated image: the spec's own, else per CPU/GPU from settings or the CUDA table.

    GPU images get the CUDA of the workflow, else of the torch pinned in the requirements, else the
    default; the nvidia/cuda tag for it comes from `data/cuda.json` (cudnn-devel for torch images, which
    may compile extensions; runtime otherwise). At air-gapped sites, a base for one provider
    (`base_image.<provider>` / `gpu_base_image.<provider>` in the config, or `DTRUN_BASE_IMAGE_<PROVIDER>` /
    `DTRUN_GPU_BASE_IMAGE_<PROVIDER>`), then `gpu_base_image`, then `base_image` (`DTRUN_BASE_IMAGE`)
    replace it.
    """
    if spec.base:
        return BaseChoice(spec.base, None, "workflow")
    if not spec.gpu:
        return BaseChoice(provider_base(spec.provider, False) or settings.base_image or DEFAULT_CPU_BASE)
    from dtrun.images import cuda as cuda_table  # GPU images only

    # The host's driver (when known) bounds the default CUDA (issue 17: the default follows the newest torch).
    choice = cuda_table.resolve_cuda(spec.cuda, spec.requirements, driver_version)
    override = provider_base(spec.provider, True) or settings.gpu_base_image or settings.base_image
    if override:
        return BaseChoice(override, choice.version, f"CUDA {choice.version} ({choice.source})")
    flavour = "cudnn-devel" if "torch" in spec.tools else "runtime"
    return BaseChoice(cuda_table.base_for(choice.version, flavour), choice.version,
                      f"CUDA {choice.version} ({choice.source})")


def provider_base(provider: str, gpu: bool) -> str | None:
    """The base configured for one provider's CPU or GPU images, if any (environment first)."""
    name = "gpu_base_image" if gpu else "base_image"
    from_env = os.environ.get(f"DTRUN_{name.upper()}_{provider.upper()}")
    if from_env:
        return from_env
    from dtrun.config import read_file_settings

    return read_file_settings().get(f"{name}.{provider}")


def _get_or_pull(host: Any, ref: str, what: str) -> ImageInfo:
    """An image on the host (an `ImageHost`), pulled if missing; flows call it for action images.

    A reference the daemon cannot parse is refused as one, saying where such a reference is set: a
    lookup or pull would only fail again with Docker's terse "invalid reference format"."""
    try:
        found: ImageInfo | None = host.image(ref)
    except InvalidReference as exc:
        fix = {"base image": "fix DTRUN_BASE_IMAGE (or `dtrun config set base_image`, or the workflow's base)",
               "image": "fix the workflow's `image:`"}.get(what, f"fix the {what}'s reference")
        raise InvalidReference(ref, exc.reason, what=f"the {what}", hint=f"{fix}: {REFERENCE_HINT}") from None
    if found is not None:
        return found
    try:
        pulled: ImageInfo = host.pull_image(ref)
        return pulled
    except DtrunError as exc:
        reason = exc.message.split(": ", 1)[-1]
        if what == "base image":
            hint = ("pull or load it on that host, or point DTRUN_BASE_IMAGE (or `dtrun config set base_image`) "
                    "at an image that is there; `make base-image` builds one offline")
        else:  # an image the workflow or action names itself: only bringing that image helps
            hint = (f"pull {ref} where its registry is reachable and bring it to that host (`docker save {ref}` "
                    "there, `docker load` here), or name an image the host already has (`docker images`)")
        raise BuildError(f"{what} {ref} is not on the Docker host and cannot be pulled: {reason}",
                         hint=hint) from None


# -- the remembered tags (spec key -> base id and tag) and when each image was last used -------------------
def lookup_key(spec: ImageSpec, base_ref: str, builder: Builder, host: str | None) -> str:
    """What determines the tag besides the base id: spec, base reference, builder kind, templates, host."""
    data = {"spec": spec.key(), "base": base_ref, "buildkit": builder.buildkit, "templates": fingerprint(),
            "platform": PLATFORM, "host": host or ""}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def user_image_key(ref: str, host: str | None) -> str:
    """The record's key for an image the workflow names itself (`image:`), on one host."""
    return hashlib.sha256(json.dumps({"image": ref, "host": host or ""}).encode()).hexdigest()[:32]


def known_image(host: ImageHost, key: str, base_ref: str) -> tuple[str, ImageInfo] | None:
    """The remembered tag for `key` and its image, if the tag still exists and the base still has the id
    the tag was computed from (else None: the full path decides).

    Two exact inspects by name, the tag's first (a missing tag needs no second call). Not one filtered
    `images/json` list for both references: the daemon answers a list by walking every image it holds
    (9-14 ms on a host with a few hundred images, more on a busy one), an inspect by name in under a
    millisecond; and the tag's inspect carries the image's config (user, HOME) the list lacks. The name
    is resolved by the daemon as `docker run` would (`name` is `name:latest`; a digest reference names
    one image), so what is checked is what the job's container will be created from."""
    entry = record.entry(key)
    if entry is None or not entry.get("base_id"):
        return None
    tag, base_id = str(entry.get("tag")), str(entry.get("base_id"))
    image = host.image(tag)
    if image is None:
        return None
    base = host.image(base_ref)
    if base is None or base.id != base_id:
        return None
    record.remember(key, tag, image, base_id)
    return tag, image


def recorded_image(spec: ImageSpec, settings: Settings, host: str | None) -> tuple[str, ImageInfo] | None:
    """The tag and image `resolve_image` answered last time for `spec` on `host`, from the client's
    record alone (no daemon; see `dtrun.images.record` for why a stale entry cannot give a wrong cache
    hit). None when the record cannot say: never seen; a GPU image (its base follows the host's driver);
    an image the workflow names by tag (`image: pytorch/pytorch:latest`), because a tag moves on the host
    (`docker pull`, `docker tag`) and a user who pulled a newer image expects the job to run on it: only
    the host knows which image the tag names now. A digest reference (`name@sha256:...`) names one image
    for ever, and a generated image's tag is its content, so those are answered here."""
    if spec.user_image:
        if "@sha256:" not in spec.user_image:
            return None
        return record.recorded(user_image_key(spec.user_image, host))
    if spec.gpu:
        return None
    choice = base_image(spec, settings)
    return record.recorded(lookup_key(spec, choice.ref, pick_builder(), host))


def record_use(tag: str) -> None:
    """When an image was last used by this client: what `dtrun images prune` goes by."""
    path = cache_path("image-usage.json")
    data = read_json(path)
    data[tag] = time.time()
    write_json(path, data)


def last_used() -> dict[str, float]:
    return {k: float(v) for k, v in read_json(cache_path("image-usage.json")).items()
            if isinstance(v, (int, float))}


def ensure_image(host: ImageHost, spec: ImageSpec, settings: Settings, *, docker_host: str | None,
                 output: Output, rebuild: str = "", driver_version: str | None = None,
                 step: Output | None = None, say: Output | None = None, where: str | None = None) -> tuple[str, bool]:
    """Return (image reference, whether it was built now); `resolve_image` says the rest."""
    tag, _, built = resolve_image(host, spec, settings, docker_host=docker_host, output=output, rebuild=rebuild,
                                  driver_version=driver_version, step=step, say=say, where=where)
    return tag, built


def resolve_image(host: ImageHost, spec: ImageSpec, settings: Settings, *, docker_host: str | None,
                  output: Output, rebuild: str = "", driver_version: str | None = None,
                  step: Output | None = None, say: Output | None = None,
                  where: str | None = None) -> tuple[str, ImageInfo, bool]:
    """Return (image reference, the image, whether it was built now), and record them (`record.py`).

    `where` is the host's URL, part of the remembered lookup (default: `docker_host`, the DOCKER_HOST
    builds use, which is not always stable: an ssh host's tunnel has a socket of its own per process).
    `driver_version` is the Docker host's NVIDIA driver when known (the backend reads it); a GPU image
    whose CUDA is newer than that driver runs is refused before anything is built. `rebuild` (any new
    value) forces a build under the same tag. `step` hears the title of each build step as it starts;
    `say` (default: `output`) hears what is built from what base with which builder.
    """
    where = where if where is not None else docker_host
    if spec.user_image:
        image = _get_or_pull(host, spec.user_image, "image")
        record.remember(user_image_key(spec.user_image, where), spec.user_image, image)
        return spec.user_image, image, False

    choice = base_image(spec, settings, driver_version)
    if choice.cuda:
        from dtrun.images.cuda import check_cuda_supported

        check_cuda_supported(choice.cuda, driver_version)
    builder = pick_builder()
    key = lookup_key(spec, choice.ref, builder, where)
    if not rebuild:
        known = known_image(host, key, choice.ref)
        if known:
            record_use(known[0])
            return known[0], known[1], False
    # the full path: the modules that render and probe load only here, not for an image that exists
    from dtrun.images.dockerfile import plan_build
    from dtrun.images.probe import probe_base

    base = _get_or_pull(host, choice.ref, "base image")
    info = probe_base(host, choice.ref, base.id)
    plan = plan_build(spec, choice.ref, info, buildkit=builder.buildkit, rebuild=rebuild, platform=PLATFORM,
                      cuda=choice.cuda)
    existing = None if rebuild else host.image(plan.tag)
    if existing is not None:
        record.remember(key, plan.tag, existing, base.id)
        record_use(plan.tag)
        return plan.tag, existing, False
    why = f", {choice.reason}" if choice.reason else ""
    (say or output)(f"building {plan.tag} from {choice.ref}{why} with {builder.describe()}"
           + (" (forced rebuild)" if rebuild else ""))
    secrets = {}
    ca = settings.ca_bundle_path
    if ca and builder.buildkit:
        secrets["dtrun-ca"] = ca
    previous = host.image(plan.tag) if rebuild else None
    try:
        build(builder, host, dockerfile=plan.dockerfile, context=plan.context, tag=plan.tag, labels=plan.labels,
              build_args=plan.build_args, secrets=secrets, docker_host=docker_host, output=output, step=step)
    except BuildError as exc:
        from dtrun.images.diagnose import explain_build_failure

        raise explain_build_failure(exc, spec, choice.ref, info) from None
    built = host.image(plan.tag)
    if built is None:
        raise BuildError(f"the build of {plan.tag} finished, and the image is not on the host")
    if previous and previous.id != built.id:
        host.discard_image(previous.id)  # the image the rebuild replaced (kept while a container uses it)
    record.remember(key, plan.tag, built, base.id)
    record_use(plan.tag)
    return plan.tag, built, True
