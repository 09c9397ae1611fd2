"""The live Kubernetes suite: real jobs on a real cluster, only when one is given.

DTRUN_TEST_KUBECONFIG names the kubeconfig (its current context and namespace are used;
DTRUN_TEST_K8S_NAMESPACE overrides the namespace). DTRUN_TEST_K8S_IMAGE is an image the cluster can
pull that has torch and torchrun (e.g. dtrun's torchrun image pushed to the cluster's registry).
Without them every test here is reported as skipped, with the reason, never as passed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from dtrun.backends.kubernetes.api import KubeApi
from dtrun.backends.kubernetes.job import KubeJob

KUBECONFIG = os.environ.get("DTRUN_TEST_KUBECONFIG")
IMAGE = os.environ.get("DTRUN_TEST_K8S_IMAGE")
SESSION = os.environ.get("DTRUN_TEST_SESSION") or uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def live_api() -> KubeApi:
    if not KUBECONFIG:
        pytest.skip("no Kubernetes cluster: set DTRUN_TEST_KUBECONFIG (and DTRUN_TEST_K8S_IMAGE) to run the live suite")
    if not IMAGE:
        pytest.skip("DTRUN_TEST_K8S_IMAGE is not set: the live suite needs an image with torch the cluster can pull")
    return KubeApi(kubeconfig=KUBECONFIG, namespace=os.environ.get("DTRUN_TEST_K8S_NAMESPACE"))


@pytest.fixture
def submitted(live_api: KubeApi) -> Iterator[list[KubeJob]]:
    """Jobs a test submits; each is deleted afterwards, whatever happened."""
    jobs: list[KubeJob] = []
    yield jobs
    for job in jobs:
        live_api.delete(job, grace_s=0)


def image() -> str:
    assert IMAGE
    return IMAGE
