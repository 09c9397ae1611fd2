"""Reading a job's state from the API's JSON: the reasons dtrun shows instead of a bare "Failed"."""

from __future__ import annotations

from typing import Any

from dtrun.backends.kubernetes.status import JobState, job_state


def _job(*conditions: dict[str, Any], deadline: int | None = None) -> dict[str, Any]:
    return {"spec": {"activeDeadlineSeconds": deadline} if deadline else {},
            "status": {"conditions": list(conditions)}}


def _pod(phase: str = "Pending", **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "job", "resources": {"limits":
                                                                {"memory": "1Gi"}}}]},
            "status": {"phase": phase, **status}}


def _terminated(code: int, reason: str) -> dict[str, Any]:
    return {"containerStatuses": [{"name": "job", "state": {"terminated": {"exitCode": code, "reason": reason}}}]}


def test_complete_and_a_plain_failure_with_its_exit_code() -> None:
    assert job_state(_job({"type": "Complete", "status": "True"})) == JobState("succeeded", exit_code=0)
    failed = job_state(_job({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}),
                       [_pod("Failed", **_terminated(3, "Error"))])
    assert failed == JobState("failed", "exited with code 3 (Error)", exit_code=3)


def test_oom_is_out_of_memory_even_before_the_job_controller_notices() -> None:
    state = job_state(_job(), [_pod("Failed", **_terminated(137, "OOMKilled"))])
    assert state.out_of_memory and state.reason == "out of memory: the container was OOM-killed (memory limit 1Gi)"


def test_a_deadline_is_a_timeout() -> None:
    state = job_state(_job({"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}, deadline=60))
    assert state == JobState("failed", "timed out: the job ran longer than its timeout (60s)")


def test_waiting_pods_say_why() -> None:
    unschedulable = _pod(conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                      "message": "0/1 nodes are available: 1 Insufficient memory."}])
    assert job_state(_job(), [unschedulable]).reason == "not scheduled: 0/1 nodes are available: 1 Insufficient memory."
    pulling = _pod(containerStatuses=[{"name": "job", "state": {"waiting": {
        "reason": "ImagePullBackOff", "message": 'Back-off pulling image "reg/x:1"'}}}])
    assert job_state(_job(), [pulling]).reason == 'ImagePullBackOff: Back-off pulling image "reg/x:1"'
    events = [{"type": "Warning", "reason": "FailedScheduling", "message": "old",
               "lastTimestamp": "2026-01-01T00:00:00Z"},
              {"type": "Warning", "reason": "FailedScheduling", "message": "0/2 nodes: 2 Insufficient nvidia.com/gpu.",
               "lastTimestamp": "2026-01-01T00:01:00Z"},
              {"type": "Normal", "reason": "Scheduled", "message": "x"}]
    assert job_state(_job(), [_pod()], events).reason == "not scheduled: 0/2 nodes: 2 Insufficient nvidia.com/gpu."
    assert job_state(_job(), [_pod()]) == JobState("pending")
    assert job_state(_job(), [_pod("Running")]) == JobState("running")
