"""What the cluster says about a job, read from the API's own JSON (pure: the tests feed it dicts).

A Job's conditions say whether it finished; its pods say why: an OOM-killed container, a pod that no
node can take ("0/3 nodes are available: 3 Insufficient nvidia.com/gpu."), an image that cannot be
pulled. dtrun reports those in its own words, not as a bare "Failed".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from dtrun.structs import struct

Phase = Literal["pending", "running", "succeeded", "failed"]
# Container waiting reasons that will not fix themselves.
_STUCK = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
          "CreateContainerError", "RunContainerError"}


@struct(frozen=True)
class JobState:
    """Where one job stands; `reason` is a sentence for `dtrun status`, None when there is nothing to say."""

    phase: Phase
    reason: str | None = None
    exit_code: int | None = None
    out_of_memory: bool = False

    @property
    def finished(self) -> bool:
        return self.phase in ("succeeded", "failed")


def job_state(job: dict[str, Any], pods: Iterable[dict[str, Any]] = (),
              events: Iterable[dict[str, Any]] = ()) -> JobState:
    """The state of a Job from the Job, its pods and the events about them."""
    pods = list(pods)
    conditions = {c.get("type"): c for c in job.get("status", {}).get("conditions") or []
                  if c.get("status") == "True"}
    failure = _pod_failure(pods)
    if ("Complete" in conditions or "SuccessCriteriaMet" in conditions) and "Failed" not in conditions:
        return JobState("succeeded", exit_code=0)
    if "Failed" in conditions or "FailureTarget" in conditions:
        cond = conditions.get("Failed") or conditions["FailureTarget"]
        if failure is not None:
            return failure
        if cond.get("reason") == "DeadlineExceeded":
            deadline = job.get("spec", {}).get("activeDeadlineSeconds")
            return JobState("failed", f"timed out: the job ran longer than its timeout ({deadline}s)")
        return JobState("failed", cond.get("message") or cond.get("reason") or "the job failed")
    if failure is not None:  # the Job controller has not caught up with its pod yet
        return failure
    if any(p.get("status", {}).get("phase") == "Running" for p in pods):
        return JobState("running")
    return JobState("pending", _pending_reason(pods, events))


def _pod_failure(pods: list[dict[str, Any]]) -> JobState | None:
    for pod in pods:
        for status in pod.get("status", {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            code = terminated.get("exitCode")
            if terminated.get("reason") == "OOMKilled":
                limit = _memory_limit(pod, status.get("name"))
                where = f" (memory limit {limit})" if limit else ""
                return JobState("failed", f"out of memory: the container was OOM-killed{where}",
                                exit_code=code if code is not None else 137, out_of_memory=True)
            if code not in (None, 0):
                detail = terminated.get("message") or terminated.get("reason") or "Error"
                return JobState("failed", f"exited with code {code} ({detail.strip()})", exit_code=code)
        if pod.get("status", {}).get("reason") == "Evicted":
            return JobState("failed", f"evicted: {pod['status'].get('message', '').strip()}")
    return None


def _memory_limit(pod: dict[str, Any], container: str | None) -> str | None:
    for spec in pod.get("spec", {}).get("containers") or []:
        if spec.get("name") == container:
            limit = ((spec.get("resources") or {}).get("limits") or {}).get("memory")
            return str(limit) if limit else None
    return None


def _pending_reason(pods: list[dict[str, Any]], events: Iterable[dict[str, Any]]) -> str | None:
    """Why a pod does not run yet: its scheduling failure, or a container stuck before starting."""
    for pod in pods:
        for cond in pod.get("status", {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and cond.get("message"):
                return f"not scheduled: {cond['message'].strip()}"
        for status in pod.get("status", {}).get("containerStatuses") or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in _STUCK:
                message = waiting.get("message") or ""
                return f"{waiting['reason']}: {message}".strip().rstrip(":")
    latest: dict[str, Any] | None = None
    for event in events:
        if event.get("type") == "Warning" and event.get("reason") in ("FailedScheduling", "FailedCreate") \
                and (latest is None or _when(event) >= _when(latest)):
            latest = event
    if latest is not None:
        return f"not scheduled: {str(latest.get('message', '')).strip()}"
    return None


def _when(event: dict[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("metadata", {})
               .get("creationTimestamp") or "")
