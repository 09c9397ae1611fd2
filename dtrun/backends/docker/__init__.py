"""The Docker backend package: the only place in dtrun that speaks Docker's Engine API (its own client,
`engineapi/`; no docker-py).

`connection.py` connects (local socket, tcp+TLS, ssh through a tunnel, see `endpoint.py` and
`sshtunnel.py`, else through `docker system dial-stdio`, `dialstdio.py`); `backend.py` runs jobs as
containers; `volumes.py` stages inputs; `images.py` finds, builds and pushes images; `gpus.py` claims
GPUs by label; `hostinfo.py` and `resources.py` say what the host offers and refuse what it cannot
give; `errors.py` turns Docker's errors into dtrun's; `diagnose.py` is what `dtrun doctor` checks of
the Docker host.
"""

from dtrun.backends.base import LABEL, ContainerSpec, Exit, PublishedPort, VolumeMount
from dtrun.backends.docker.backend import DockerBackend
from dtrun.backends.docker.diagnose import diagnose

__all__ = ["LABEL", "ContainerSpec", "DockerBackend", "Exit", "PublishedPort", "VolumeMount", "create", "diagnose"]


def create(settings: object, host: str | None = None) -> DockerBackend:
    """The registry's factory: a backend for `--host`, the config's `host`, DOCKER_HOST, the current
    Docker context or the default socket (in that order). It connects on first use (`DockerBackend.client`):
    a run whose jobs are all cached never imports the client nor reaches the daemon."""
    from dtrun.backends.docker.connection import connect
    from dtrun.backends.docker.endpoint import resolve
    from dtrun.images.manager import DEFAULT_CPU_BASE

    configured = getattr(settings, "host", None)
    endpoint = resolve(host, configured)
    images = [i for i in (getattr(settings, "gpu_base_image", None), getattr(settings, "base_image", None),
                          DEFAULT_CPU_BASE) if i]
    return DockerBackend(None, endpoint.url, endpoint=endpoint, probe_images=images, connect=lambda: connect(endpoint))
