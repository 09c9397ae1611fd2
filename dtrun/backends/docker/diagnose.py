"""What the Docker backend needs of this machine and its host, for `dtrun doctor`: the endpoint and the
daemon's version, BuildKit, the base image, the NVIDIA runtime and GPUs, the ssh tunnel for ssh:// hosts.

Runs when nothing answers too (that is when it is needed most): the daemon checks then say `skip`.
Each returns a `Check` in dtrun's terms; the Engine API client stays inside this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dtrun.backends.base import Check

if TYPE_CHECKING:
    from dtrun.backends.docker.endpoint import Endpoint
    from dtrun.config import Settings


def diagnose(settings: Settings, host: str | None = None) -> list[Check]:
    """The registry's `diagnose`: every Docker check, in the order a run needs them."""
    from dtrun.backends.docker.endpoint import resolve

    endpoint = resolve(host, settings.host)
    checks: list[Check] = []
    client, docker_check = check_docker(endpoint)
    checks.append(docker_check)
    checks.append(check_buildkit())
    if client is None:
        why = "needs the Docker daemon (see the docker line)"
        checks += [Check("base image", "skip", why), Check("gpus", "skip", why)]
    else:
        checks.append(check_base_image(client, settings))
        checks.append(check_gpus(client, endpoint, settings))
    checks.append(check_ssh_tunnel(endpoint))
    return checks


def check_docker(endpoint: Endpoint) -> tuple[Any, Check]:
    """The endpoint in use (and where that choice came from) and the daemon's version."""
    from dtrun.backends.docker.connection import connect
    from dtrun.errors import DtrunError

    try:
        client = connect(endpoint)
    except DtrunError as exc:
        return None, Check("docker", "FAIL", exc.message, exc.hint)
    version = dict(client.version())
    return client, Check("docker", "ok", f"Docker {version.get('Version', '?')} (API {version.get('ApiVersion', '?')})"
                         f" at {endpoint.url} (from {endpoint.source})")


def check_buildkit() -> Check:
    """Which builder image builds will use: BuildKit through a docker CLI, else the Engine API's legacy one."""
    from dtrun.images.builder import pick_builder

    builder = pick_builder()
    if builder.buildkit:
        return Check("buildkit", "ok", builder.describe())
    return Check("buildkit", "warn", "no docker CLI that builds with BuildKit: builds use the legacy builder "
                 "(slower, no cache mounts; the CA bundle is then copied into the build)",
                 "install a docker CLI with buildx, or Debian's docker.io (its 20.10 client has BuildKit built in)")


def check_base_image(client: Any, settings: Settings) -> Check:
    """The base of CPU images (GPU bases come from the CUDA table and are checked when a GPU job builds)."""
    from dtrun.backends.docker.engineapi import errors as api_errors
    from dtrun.backends.docker.errors import explanation
    from dtrun.images.manager import DEFAULT_CPU_BASE

    ref = settings.base_image or DEFAULT_CPU_BASE
    origin = "base_image setting" if settings.base_image else "default"
    try:
        client.images.get(ref)
        return Check("base image", "ok", f"{ref} ({origin}) is on the Docker host")
    except api_errors.ImageNotFound:
        pass
    except api_errors.APIError as exc:
        if exc.status_code != 400:
            raise
        from dtrun.errors import REFERENCE_HINT

        return Check("base image", "FAIL", f"'{ref}' ({origin}) is not a valid image reference: "
                     f"{_first_line(explanation(exc)).rsplit(': ', 1)[-1]}",
                     f"fix DTRUN_BASE_IMAGE (or `dtrun config set base_image`): {REFERENCE_HINT}")
    try:
        client.images.get_registry_data(ref)  # a manifest lookup: nothing is pulled
    except api_errors.APIError as exc:
        return Check("base image", "FAIL", f"{ref} ({origin}) is not on the Docker host and cannot be pulled: "
                     f"{_first_line(explanation(exc))}",
                     "pull or load it on the Docker host, or point DTRUN_BASE_IMAGE (or `dtrun config set "
                     "base_image`) at an image that is there; `make base-image` in dtrun's checkout builds one "
                     "offline")
    return Check("base image", "ok", f"{ref} ({origin}) is not on the Docker host yet; the first build pulls it")


def check_gpus(client: Any, endpoint: Endpoint, settings: Settings) -> Check:
    """The NVIDIA runtime and the GPUs it sees; only workflows with `resources.gpu` need them."""
    from dtrun.backends.docker.hostinfo import host_info
    from dtrun.images.manager import DEFAULT_CPU_BASE

    images = [i for i in (settings.gpu_base_image, settings.base_image, DEFAULT_CPU_BASE) if i]
    info = host_info(client, endpoint.url, images=images)
    if not info.nvidia:
        return Check("gpus", "warn", "no NVIDIA runtime on the Docker host: workflows with resources.gpu cannot run "
                     "there (CPU workflows can)",
                     "install the NVIDIA driver and the NVIDIA Container Toolkit on the host "
                     "(`nvidia-ctk runtime configure --runtime=docker`), then restart Docker")
    if info.gpu_error or not info.gpus:
        reason = info.gpu_error or "nvidia-smi listed no GPUs"
        return Check("gpus", "warn", f"the NVIDIA runtime is there but no GPU answered: {_first_line(reason)}",
                     "run `nvidia-smi` on the host; check the driver, then `dtrun hosts --refresh`")
    drivers = sorted({g.driver for g in info.gpus})
    return Check("gpus", "ok", f"{info.describe_gpus()}, driver {', '.join(drivers)}")


def check_ssh_tunnel(endpoint: Endpoint) -> Check:
    """For ssh:// hosts: whether one ssh connection can forward the remote Docker socket (dtrun's fast path)."""
    from dtrun.backends.docker.connection import _through_tunnel

    if endpoint.scheme != "ssh":
        return Check("ssh tunnel", "skip", f"not used: the endpoint is {endpoint.scheme}://")
    client = _through_tunnel(endpoint)
    if client is None:
        return Check("ssh tunnel", "warn", f"cannot forward the Docker socket of {endpoint.url}: dtrun falls back to "
                     "one `ssh HOST docker system dial-stdio` per connection (slower to start)",
                     "check `ssh HOST docker info`, allow StreamLocalForwarding in the host's sshd_config, and "
                     "check that the daemon's socket is /var/run/docker.sock")
    client._dtrun_tunnel.close()
    return Check("ssh tunnel", "ok", f"one ssh connection forwards the Docker socket of {endpoint.url}")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
