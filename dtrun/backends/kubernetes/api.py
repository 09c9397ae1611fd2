"""A thin layer over the official `kubernetes` client: what the backend asks of a cluster, in dtrun's terms.

The client does configuration, authentication and TLS; this layer adds what dtrun needs on top:
idempotent submission (a re-submitted job finds its own objects: 409 is success when the labels say
they are ours), retries with exponential backoff on the API server's transient answers (429, 5xx,
dropped connections), a watch that survives the server closing it, logs, the reason a pod waits, and a
graceful stop. Reads are taken as raw JSON (`_preload_content=False`) so that `status` interprets the
API's own documents. The client is imported lazily: only users of this backend need it.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from dtrun.backends.kubernetes import manifests
from dtrun.backends.kubernetes.job import COMPLETION_INDEX_ANNOTATION, KubeJob
from dtrun.backends.kubernetes.status import JobState, job_state
from dtrun.errors import DtrunError
from dtrun.structs import struct

T = TypeVar("T")
_TRANSIENT = {429, 500, 502, 503, 504}
_IN_CLUSTER_NS = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class ClusterError(DtrunError):
    """The Kubernetes API server refused or failed a request."""


@struct(frozen=True)
class Retry:
    """Exponential backoff with jitter: `base`, 2*base, 4*base ... capped, for `attempts` tries in all."""

    attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 10.0

    def delay(self, attempt: int) -> float:
        return float(min(self.cap_s, self.base_s * (2 ** attempt)) * (0.5 + random.random() / 2))


def _client() -> Any:
    try:
        import kubernetes
    except ImportError as exc:
        raise ClusterError("the Kubernetes backend needs the `kubernetes` Python client",
                           hint="pip install 'dtrun[kubernetes]'") from exc
    return kubernetes


class KubeApi:
    """One cluster and namespace, reached with the kubeconfig (or in-cluster) credentials."""

    def __init__(self, *, kubeconfig: str | None = None, context: str | None = None,
                 namespace: str | None = None, api_client: Any = None, retry: Retry = Retry()) -> None:
        k8s = _client()
        self.retry = retry
        if api_client is None:
            api_client, default_ns = _load_config(k8s, kubeconfig, context)
        else:
            default_ns = "default"
        self.namespace = namespace or default_ns
        self.api_client = api_client
        self.batch = k8s.client.BatchV1Api(api_client)
        self.core = k8s.client.CoreV1Api(api_client)
        self._exception = k8s.client.exceptions.ApiException

    # -- submission -------------------------------------------------------------------------------
    def submit(self, job: KubeJob) -> str:
        """Create the job's objects; return the Job's uid. Submitting the same job again is harmless."""
        ns = self._ns(job)
        first, *_ = manifests.objects(job)
        try:
            created = self._json(self.batch.create_namespaced_job, ns, first)
        except self._exception as exc:
            if exc.status != 409:
                raise
            created = self._json(self.batch.read_namespaced_job, job.name, ns)
            labels = created.get("metadata", {}).get("labels") or {}
            if any(labels.get(k) != v for k, v in job.labels.items()):
                raise ClusterError(f"a Job named {job.name} already exists in namespace {ns} and is not this "
                                   "dtrun job's", hint=f"kubectl -n {ns} get job {job.name} --show-labels") from exc
        uid = str(created["metadata"]["uid"])
        for extra in manifests.objects(job, owner_uid=uid, reveal=True)[1:]:
            create = (self.core.create_namespaced_secret if extra["kind"] == "Secret"
                      else self.core.create_namespaced_service)
            try:
                self._call(create, ns, extra)
            except self._exception as exc:
                if exc.status != 409:
                    raise
        if created.get("spec", {}).get("suspend"):
            # Everything the pods refer to exists now: let the Job controller start them.
            self._call(self.batch.patch_namespaced_job, job.name, ns, {"spec": {"suspend": False}},
                       _content_type="application/merge-patch+json")
        return uid

    # -- reading ----------------------------------------------------------------------------------
    def state(self, job: KubeJob) -> JobState:
        return self._snapshot(job)[0]

    def _snapshot(self, job: KubeJob) -> tuple[JobState, str | None]:
        """The job's state and the Job's resourceVersion it was read at (where a watch resumes)."""
        ns = self._ns(job)
        found = self._json(self.batch.read_namespaced_job, job.name, ns)
        pods = self.pods(job)
        events: list[dict[str, Any]] = []
        if not any(p.get("status", {}).get("phase") in ("Running", "Succeeded", "Failed") for p in pods):
            for pod in pods:
                selector = f"involvedObject.kind=Pod,involvedObject.name={pod['metadata']['name']}"
                events += self._json(self.core.list_namespaced_event, ns,
                                     field_selector=selector).get("items") or []
        return job_state(found, pods, events), found.get("metadata", {}).get("resourceVersion")

    def pods(self, job: KubeJob) -> list[dict[str, Any]]:
        """The job's pods, node 0 first (their completion index; creation time for a one-node job)."""
        items = self._json(self.core.list_namespaced_pod, self._ns(job), label_selector=job.selector).get("items")

        def order(pod: dict[str, Any]) -> tuple[int, str]:
            meta = pod.get("metadata", {})
            index = (meta.get("annotations") or {}).get(COMPLETION_INDEX_ANNOTATION, "0")
            return int(index) if str(index).isdigit() else 0, str(meta.get("creationTimestamp", ""))

        return sorted(items or [], key=order)

    def wait(self, job: KubeJob, timeout_s: float | None = None,
             on_change: Callable[[JobState], None] | None = None) -> JobState:
        """Watch the Job until it finishes (or `timeout_s` passes); reconnects when the server ends the watch."""
        ns = self._ns(job)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        last: JobState | None = None
        while True:
            current, version = self._snapshot(job)
            if current != last and on_change is not None:
                on_change(current)
            last = current
            if current.finished:
                return current
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return current
            window = int(min(left, 60)) + 1 if left is not None else 60
            # Any change of the Job (a pod started, failed, finished; an ERROR such as 410 Gone) means
            # reading the state afresh; a quiet window ends by itself and the state is read again too.
            for _event in self._watch(ns, job.name, version, window):
                break

    def _watch(self, ns: str, name: str, version: str | None, window_s: int) -> Iterator[dict[str, Any]]:
        response = self._call(self.batch.list_namespaced_job, ns, field_selector=f"metadata.name={name}",
                              watch=True, resource_version=version, timeout_seconds=window_s,
                              allow_watch_bookmarks=False, _preload_content=False)
        try:
            for line in _lines(response):
                if line.strip():
                    yield json.loads(line)
        except Exception as exc:  # the connection dropped mid-watch: the caller reads the state again
            if not _is_connection_error(exc):
                raise
        finally:
            response.close()  # a watch left early must not go back to the pool half-read
            response.release_conn()

    def logs(self, job: KubeJob, node: int = 0, follow: bool = False) -> Iterator[str]:
        """The log lines of node `node`'s container, each with the kubelet's RFC 3339 timestamp first."""
        pods = self.pods(job)
        if node >= len(pods):
            raise ClusterError(f"job {job.name} has no pod for node {node} yet")
        response = self._call(self.core.read_namespaced_pod_log, pods[node]["metadata"]["name"], self._ns(job),
                              container=manifests.CONTAINER, timestamps=True, follow=follow,
                              _preload_content=False)
        try:
            yield from _lines(response)
        finally:
            response.release_conn()

    def list_jobs(self, selector: str) -> list[dict[str, Any]]:
        """dtrun's Jobs in the namespace that match a label selector: the ground truth for reconcile."""
        items = self._json(self.batch.list_namespaced_job, self.namespace, label_selector=selector).get("items")
        return list(items or [])

    def gpu_products(self) -> list[str] | None:
        """The GPU models the cluster's nodes advertise (GPU feature discovery's product label).

        None when dtrun may not list nodes (a namespace-scoped role): the workflow's GPU name is then
        used as the label value itself.
        """
        from dtrun.backends.kubernetes.job import GPU_PRODUCT_LABEL

        try:
            nodes = self._json(self.core.list_node, label_selector=GPU_PRODUCT_LABEL).get("items") or []
        except ClusterError as exc:
            cause = exc.__cause__
            if isinstance(cause, self._exception) and cause.status == 403:
                return None
            raise
        return sorted({n["metadata"]["labels"][GPU_PRODUCT_LABEL] for n in nodes})

    # -- stopping ---------------------------------------------------------------------------------
    def delete(self, job: KubeJob, grace_s: int | None = None) -> None:
        """Stop gracefully: each pod gets SIGTERM and `grace_s` to save its outputs, then the Job goes.

        A Job's own grace period is not passed on to its pods, so the pods are deleted first with it;
        the Job is then deleted in the background and takes its Secret and Service with it.
        """
        ns = self._ns(job)
        grace = job.termination_grace_s if grace_s is None else grace_s
        for pod in self.pods(job):
            self._ignore_404(self.core.delete_namespaced_pod, pod["metadata"]["name"], ns,
                             grace_period_seconds=grace, body={"gracePeriodSeconds": grace})
        self._ignore_404(self.batch.delete_namespaced_job, job.name, ns, grace_period_seconds=grace,
                         propagation_policy="Background",
                         body={"gracePeriodSeconds": grace, "propagationPolicy": "Background"})

    # -- plumbing ---------------------------------------------------------------------------------
    def _ns(self, job: KubeJob) -> str:
        return job.namespace or self.namespace

    def _ignore_404(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            self._call(fn, *args, _preload_content=False, **kwargs)
        except self._exception as exc:
            if exc.status != 404:
                raise

    def _json(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        response = self._call(fn, *args, _preload_content=False, **kwargs)
        data: dict[str, Any] = json.loads(response.data or b"{}")
        return data

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One API call, retried with backoff while the server's answer is transient."""
        for attempt in range(self.retry.attempts):
            try:
                return fn(*args, **kwargs)
            except self._exception as exc:
                if exc.status in (401, 403):
                    raise ClusterError(f"the API server refused dtrun ({exc.status} {exc.reason})",
                                       hint="check the kubeconfig's credentials and the namespace's RBAC") from exc
                if exc.status in _TRANSIENT and attempt == self.retry.attempts - 1:
                    raise ClusterError(f"the Kubernetes API server kept failing ({exc.status} {exc.reason}) "
                                       f"after {self.retry.attempts} attempts",
                                       hint="the cluster's control plane may be overloaded; try again") from exc
                if exc.status not in _TRANSIENT:
                    raise
            except Exception as exc:
                if not _is_connection_error(exc) or attempt == self.retry.attempts - 1:
                    if _is_connection_error(exc):
                        raise ClusterError(f"the Kubernetes API server cannot be reached: {exc}") from exc
                    raise
            time.sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable")


def _lines(response: Any) -> Iterator[str]:
    """The lines of a streamed HTTP body, as they arrive."""
    buffer = b""
    for chunk in response.stream(65536):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            yield line.decode(errors="replace")
    if buffer:
        yield buffer.decode(errors="replace")


def _is_connection_error(exc: BaseException) -> bool:
    import urllib3.exceptions

    return isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError))


def _load_config(k8s: Any, kubeconfig: str | None, context: str | None) -> tuple[Any, str]:
    """The kubeconfig (explicit, $KUBECONFIG, ~/.kube/config), else the pod's service account."""
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or \
        str(Path.home() / ".kube" / "config")
    if Path(path).is_file():
        try:
            contexts, active = k8s.config.list_kube_config_contexts(config_file=path)
            chosen = next((c for c in contexts if c["name"] == context), None) if context else active
            if context and chosen is None:
                names = ", ".join(c["name"] for c in contexts) or "none"
                raise ClusterError(f"no context {context} in {path}", hint=f"contexts there: {names}")
            client = k8s.config.new_client_from_config(config_file=path, context=context)
        except k8s.config.ConfigException as exc:
            raise ClusterError(f"cannot use the kubeconfig {path}: {exc}") from exc
        namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
        return client, str(namespace)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s.config.load_incluster_config()
        namespace = _IN_CLUSTER_NS.read_text().strip() if _IN_CLUSTER_NS.is_file() else "default"
        return k8s.client.ApiClient(), namespace
    raise ClusterError("no Kubernetes cluster is configured",
                       hint=f"write a kubeconfig at {path}, set KUBECONFIG, or run dtrun inside the cluster")
