"""The Kubernetes backend: one `batch/v1` Job per dtrun job, created through the official client.

`job` holds the small typed description of a job this backend runs, `manifests` turns it into the
objects dtrun creates (pure functions: golden-tested, validated against the API schemas, printable for
`--dry-run`), `status` reads what the cluster says back (pure), `api` is the thin layer over the
`kubernetes` client (imported lazily; `pip install 'dtrun[kubernetes]'`), `mapping` turns a launched
job into a `KubeJob`, and `backend` is the `AgentJobBackend` the engine talks to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dtrun.backends.kubernetes.backend import KubernetesBackend


def create(settings: object, host: str | None = None) -> KubernetesBackend:
    """The registry's factory: `backend: kubernetes` with the `kubernetes.*` settings; `--host` names a
    kubeconfig context. Nothing is contacted until a job needs the cluster."""
    from dtrun.backends.kubernetes.backend import KubernetesBackend
    from dtrun.backends.kubernetes.settings import KubeSettings
    from dtrun.config import Settings

    assert isinstance(settings, Settings)
    options = settings.backend_options("kubernetes")
    if host:
        options["context"] = host
    return KubernetesBackend(settings, KubeSettings.from_options(options))
