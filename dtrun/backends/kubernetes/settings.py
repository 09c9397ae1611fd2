"""The `kubernetes.*` settings (`dtrun config set kubernetes.KEY VALUE` or `DTRUN_KUBERNETES_KEY`), checked once."""

from __future__ import annotations

import re

from dtrun.errors import DtrunError
from dtrun.structs import struct

_INTS = ("ttl", "stop_grace")
KNOWN = ("kubeconfig", "context", "namespace", "registry", "image_pull_secret", "service_account", "ttl",
         "stop_grace", "agent_python")


@struct(frozen=True)
class KubeSettings:
    #: A kubeconfig file; None: $KUBECONFIG, ~/.kube/config, else the pod's service account.
    kubeconfig: str | None = None
    #: A context of the kubeconfig; None: its current context.
    context: str | None = None
    #: None: the context's namespace (else `default`).
    namespace: str | None = None
    #: Where images are pushed for the cluster to pull (`host:port/prefix`); None: the image as built here
    #: (a kind or minikube cluster that was given the local images).
    registry: str | None = None
    image_pull_secret: str | None = None
    service_account: str | None = None
    #: Seconds a finished Job is kept (ttlSecondsAfterFinished) when no dtrun process removes it.
    ttl: int = 24 * 3600
    #: Seconds a stopped pod gets to save its outputs (terminationGracePeriodSeconds).
    stop_grace: int = 30
    agent_python: str = "python"

    def __post_init__(self) -> None:
        if self.namespace is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", self.namespace):
            raise DtrunError(f"kubernetes.namespace '{self.namespace}' is not a valid namespace name",
                             hint="lower-case letters, digits and dashes, e.g. `ml-jobs`")

    @classmethod
    def from_options(cls, options: dict[str, str]) -> KubeSettings:
        unknown = sorted(set(options) - set(KNOWN))
        if unknown:
            raise DtrunError(f"unknown setting 'kubernetes.{unknown[0]}'",
                             hint=f"kubernetes settings: {', '.join('kubernetes.' + k for k in KNOWN)}")
        values: dict[str, object] = {k: v for k, v in options.items() if k not in _INTS and v != ""}
        for key in _INTS:
            if key in options:
                try:
                    values[key] = int(options[key])
                except ValueError:
                    raise DtrunError(f"kubernetes.{key} '{options[key]}' is not a whole number of seconds",
                                     hint=f"e.g. `dtrun config set kubernetes.{key} 60`") from None
        return cls(**values)  # type: ignore[arg-type]
