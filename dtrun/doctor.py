"""`dtrun doctor`'s checks: what a run needs from this machine and the Docker host, each with a fix.

Each check returns one `Check`: a status (`ok`, `warn` for what only some workflows need, `FAIL` for what
every run needs, `skip` when it does not apply or an earlier check failed), a one-line message and,
unless all is well, the fix in the user's terms.

The daemon is reached only through the small `_daemon_*`, `_image_*` and `_gpu_*` functions below, so the
checks do not depend on how the Docker backend is organised; re-point those to move them to another
backend layer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from dtrun.backends.docker.endpoint import Endpoint
    from dtrun.config import Settings

Status = Literal["ok", "warn", "FAIL", "skip"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    message: str
    fix: str | None = None


def run_checks(settings: Settings, endpoint: Endpoint, *, registry: str | None = None) -> list[Check]:
    """Every check, in the order a run needs them; daemon checks are skipped when no daemon answers."""
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
    checks.append(check_store(settings.store))
    checks.append(check_ssh_tunnel(endpoint))
    checks.append(check_registry(registry))
    return checks


# -- the daemon, through these functions only ------------------------------------------------------------------
def _daemon_connect(endpoint: Endpoint) -> Any:
    from dtrun.backends.docker.connection import connect

    return connect(endpoint)


def _daemon_version(client: Any) -> dict[str, Any]:
    return dict(client.version())


def _image_on_host(client: Any, ref: str) -> bool:
    import docker.errors

    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def _image_in_registry(client: Any, ref: str) -> str | None:
    """None when the daemon's registry has `ref` (a manifest lookup, nothing is pulled), else why not."""
    import docker.errors

    try:
        client.images.get_registry_data(ref)
        return None
    except docker.errors.APIError as exc:
        return str(exc.explanation or exc)


def _daemon_through_tunnel(endpoint: Endpoint) -> bool:
    """Whether a daemon answers through one ssh connection forwarding its socket (then closed again)."""
    from dtrun.backends.docker.connection import _through_tunnel

    client = _through_tunnel(endpoint)
    if client is None:
        return False
    client._dtrun_tunnel.close()
    return True


def _gpu_host_info(client: Any, endpoint: Endpoint, images: list[str]) -> Any:
    from dtrun.backends.docker.hostinfo import host_info

    return host_info(client, endpoint.url, images=images)


# -- the checks ----------------------------------------------------------------------------------------------
def check_docker(endpoint: Endpoint) -> tuple[Any, Check]:
    """The endpoint in use (and where that choice came from) and the daemon's version."""
    from dtrun.errors import DtrunError

    try:
        client = _daemon_connect(endpoint)
    except DtrunError as exc:
        return None, Check("docker", "FAIL", exc.message, exc.hint)
    version = _daemon_version(client)
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
    from dtrun.images.manager import DEFAULT_CPU_BASE

    ref = settings.base_image or DEFAULT_CPU_BASE
    origin = "base_image setting" if settings.base_image else "default"
    if _image_on_host(client, ref):
        return Check("base image", "ok", f"{ref} ({origin}) is on the Docker host")
    fix = ("pull or load it on the Docker host, or point DTRUN_BASE_IMAGE (or `dtrun config set base_image`) at "
           "an image that is there; `make base-image` in dtrun's checkout builds one offline")
    unreachable = _image_in_registry(client, ref)
    if unreachable is None:
        return Check("base image", "ok", f"{ref} ({origin}) is not on the Docker host yet; the first build pulls it")
    return Check("base image", "FAIL", f"{ref} ({origin}) is not on the Docker host and cannot be pulled: "
                 f"{_first_line(unreachable)}", fix)


def check_gpus(client: Any, endpoint: Endpoint, settings: Settings) -> Check:
    """The NVIDIA runtime and the GPUs it sees; only workflows with `resources.gpu` need them."""
    from dtrun.images.manager import DEFAULT_CPU_BASE

    images = [i for i in (settings.gpu_base_image, settings.base_image, DEFAULT_CPU_BASE) if i]
    info = _gpu_host_info(client, endpoint, images)
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


def check_store(url: str) -> Check:
    """Write, read back and delete a small object where runs keep their records and artifacts."""
    import fsspec

    from dtrun.store.store import storage_options

    fix = ("make it writable, or choose another store: `dtrun config set store FOLDER` or `s3://bucket/prefix` "
           "(or DTRUN_STORE)")
    try:
        fs, root = fsspec.core.url_to_fs(url, **storage_options(url))
    except ImportError:
        return Check("store", "FAIL", f"{url}: the s3 extra is not installed", "pip install 'dtrun[s3]'")
    except ValueError as exc:
        return Check("store", "FAIL", f"{url} is not a folder or an fsspec URL: {exc}", fix)
    probe = f"{root.rstrip('/')}/.dtrun-doctor-{uuid.uuid4().hex[:8]}"
    data = b"dtrun doctor\n"
    try:
        fs.makedirs(root, exist_ok=True)
        fs.pipe_file(probe, data)
        back = bytes(fs.cat_file(probe))
        fs.rm(probe)
    except Exception as exc:  # any failure of the storage layer is the answer here
        return Check("store", "FAIL", f"{url} is not writable: {_reason(exc)}", fix)
    if back != data:
        return Check("store", "FAIL", f"{url} returned other bytes than were written", fix)
    return Check("store", "ok", f"{url}: write, read and delete work")


def check_ssh_tunnel(endpoint: Endpoint) -> Check:
    """For ssh:// hosts: whether one ssh connection can forward the remote Docker socket (dtrun's fast path)."""
    if endpoint.scheme != "ssh":
        return Check("ssh tunnel", "skip", f"not used: the endpoint is {endpoint.scheme}://")
    if not _daemon_through_tunnel(endpoint):
        return Check("ssh tunnel", "warn", f"cannot forward the Docker socket of {endpoint.url}: dtrun falls back to "
                     "one ssh command per API call (slow)",
                     "check `ssh HOST docker info`, allow StreamLocalForwarding in the host's sshd_config, and "
                     "check that the daemon's socket is /var/run/docker.sock")
    return Check("ssh tunnel", "ok", f"one ssh connection forwards the Docker socket of {endpoint.url}")


def check_registry(registry: str | None) -> Check:
    """Whether an image registry answers its API (`/v2/`): `dtrun action publish` pushes to one."""
    if not registry:
        return Check("registry", "skip", "not needed: the Docker backend runs images on the host that builds them "
                     "(check one with --registry HOST:PORT)")
    import urllib.error
    import urllib.request

    host = registry.split("://", 1)[-1].split("/", 1)[0]
    loopback = host.split(":")[0] in ("localhost", "127.0.0.1", "::1", "[::1]")
    schemes = ["http", "https"] if loopback else ["https"]  # Docker trusts plain HTTP only on loopback
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({})) if loopback else \
        urllib.request.build_opener()
    errors = []
    for scheme in schemes:
        try:
            with opener.open(f"{scheme}://{host}/v2/", timeout=10) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            errors.append(_reason(exc))
            continue
        if status in (200, 401):
            auth = " (asks for credentials)" if status == 401 else ""
            return Check("registry", "ok", f"{host} answers the registry API over {scheme}{auth}")
        errors.append(f"HTTP {status} from {scheme}://{host}/v2/")
    return Check("registry", "FAIL", f"no registry answers at {host}: {errors[-1]}",
                 "check the address and port (e.g. 127.0.0.1:5000) and that the registry runs; "
                 "`docker login HOST` for private ones")


def _reason(exc: BaseException) -> str:
    """The cause in a few words: `Not a directory`, `connection refused`, not nested wrappers."""
    import urllib.error

    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        return _reason(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return _first_line(f"{type(exc).__name__}: {exc}")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
