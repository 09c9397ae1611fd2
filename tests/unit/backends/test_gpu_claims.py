"""GPU claims without holes (issue 15): no lapse by age, ages by the daemon's clock, a failed preemption
fails the preempting job's admission instead of sharing a GPU."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from dtrun.backends.base import ContainerSpec
from dtrun.backends.docker.clock import age, daemon_now, parse_time
from dtrun.backends.docker.engineapi import errors as api_errors
from dtrun.backends.docker.gpus import busy_gpus, create_with_gpus, describe_holders, holders
from dtrun.backends.docker.hostinfo import GpuInfo, HostInfo
from dtrun.errors import ResourceError
from dtrun.spec.models import Gpu

GPUS = [GpuInfo(i, f"GPU-{i}", "NVIDIA A100-SXM4-40GB", 40 * 2**30, "535") for i in range(2)]
HOST = HostInfo("unix://", "box", "id", "24", "Ubuntu", 32, 2**37, ["nvidia", "runc"], GPUS)


def test_rfc3339_times_with_offsets_and_nanoseconds() -> None:
    assert parse_time("1970-01-01T00:01:40Z") == 100.0
    assert parse_time("1970-01-01T01:01:40+01:00") == 100.0
    assert parse_time("1969-12-31T23:01:40.5-01:00") == 100.5
    assert abs(parse_time("1970-01-01T00:01:40.123456789Z") - 100.123456789) < 1e-6
    with pytest.raises(ValueError):
        parse_time("yesterday")


@dataclass
class Daemon:
    """A fake Engine API: containers (as the list API gives them) and the daemon's own clock."""

    system_time: str = "2030-06-01T12:15:00.000000000Z"
    listed: list[dict[str, Any]] = field(default_factory=list)
    created: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> Daemon:
        return self

    def info(self) -> dict[str, str]:
        return {"SystemTime": self.system_time}

    def containers(self, all: bool, filters: dict[str, str]) -> list[dict[str, Any]]:
        return list(self.listed)

    def inspect_container(self, cid: str) -> dict[str, Any]:
        return {"Created": self.created[cid]}


def test_ages_use_the_daemons_clock_not_the_clients() -> None:
    daemon = Daemon()  # the daemon lives in 2030, whatever this machine's clock says
    assert daemon_now(daemon) == parse_time("2030-06-01T12:15:00Z")
    assert age(daemon, "2030-06-01T12:00:00.25Z") == 900 - 0.25
    assert age(daemon, "garbage") is None


def test_a_created_container_holds_its_gpus_forever_and_the_notice_says_since_when() -> None:
    daemon = Daemon(listed=[{"Id": "c1", "Names": ["/dtrun-r-train-1"], "State": "created", "Created": 0,
                             "Labels": {"dev.dtrun.gpus": "GPU-0", "dev.dtrun.run": "calm-otter-1"}}],
                    created={"c1": "2030-06-01T12:00:00.000000001Z"})
    found = holders(daemon)
    assert [h.name for h in found] == ["dtrun-r-train-1"] and busy_gpus(daemon)["GPU-0"].state == "created"
    notice = describe_holders(daemon, found)
    assert "created, not started for 15 min" in notice and "dtrun status" in notice and "calm-otter-1" in notice


def test_the_fallback_creation_time_is_utc() -> None:
    class Failing(Daemon):
        def inspect_container(self, cid: str) -> dict[str, Any]:
            raise RuntimeError("gone")

    daemon = Failing(listed=[{"Id": "c1", "Names": ["/x"], "State": "running", "Created": 100,
                              "Labels": {"dev.dtrun.gpus": "GPU-0"}}])
    assert holders(daemon)[0].created == "1970-01-01T00:01:40Z"


class Victim:
    """A container as `client.containers.get` returns it; `stop` does what the test says."""

    def __init__(self, host: Host, cid: str, status: str, stop: str) -> None:
        self.host, self.id, self.status, self.how = host, cid, status, stop

    def stop(self, timeout: int) -> None:
        self.host.calls.append(f"stop {self.id}")
        if self.how == "refuse":
            raise api_errors.APIError("Server Error", 500, "cannot kill container: permission denied")
        if self.how == "ok":
            self.host.states[self.id] = "exited"

    def remove(self, force: bool = False) -> None:
        self.host.calls.append(f"remove {self.id}")
        self.host.states.pop(self.id)


class Host:
    """The daemon of a fake DockerBackend: GPU containers by state, and what was done to them."""

    def __init__(self, victim_status: str, stop: str) -> None:
        self.states = {"spot": victim_status}
        self.stop_how = stop
        self.calls: list[str] = []
        self.api = _Api(self)
        self.volumes = _Volumes(self)
        self.containers = _Containers(self)


class _Api:
    def __init__(self, host: Host) -> None:
        self.host = host

    def containers(self, all: bool, filters: dict[str, str]) -> list[dict[str, Any]]:
        labels = {"spot": {"dev.dtrun.gpus": "GPU-0,GPU-1", "dev.dtrun.interruptible": "1",
                           "dev.dtrun.run": "spot-run-1"},
                  "urgent": {"dev.dtrun.gpus": "GPU-0", "dev.dtrun.interruptible": "0"}}
        return [{"Id": cid, "Names": [f"/{cid}"], "State": state, "Created": 0, "Labels": labels[cid]}
                for cid, state in self.host.states.items()]

    def inspect_container(self, cid: str) -> dict[str, Any]:
        if cid not in self.host.states:
            raise api_errors.NotFound("no such container", 404)
        return {"Created": {"spot": "2030-01-01T00:00:00Z"}.get(cid, "2030-01-01T00:00:01Z"),
                "State": {"Status": self.host.states[cid]}}


class _Volumes:
    def __init__(self, host: Host) -> None:
        self.host = host

    def create(self, **kwargs: Any) -> None:
        self.host.calls.append(f"mark {kwargs['name']}")


class _Containers:
    def __init__(self, host: Host) -> None:
        self.host = host

    def get(self, cid: str) -> Victim:
        return Victim(self.host, cid, self.host.states[cid], self.host.stop_how)


class FakeBackend:
    def __init__(self, host: Host) -> None:
        self.client = host

    def create(self, spec: ContainerSpec) -> Any:
        self.client.states["urgent"] = "created"
        return type("Container", (), {"id": "urgent", "name": spec.name})()

    def remove(self, container: Any) -> None:
        self.client.calls.append(f"remove {container.id}")
        self.client.states.pop(container.id, None)


def spec() -> ContainerSpec:
    return ContainerSpec(name="urgent", image="img", command=["true"], entrypoint=None, env={}, working_dir="/",
                         labels={})


@pytest.mark.parametrize("status,stop,why", [
    ("running", "refuse", "the Docker daemon did not stop it (cannot kill container: permission denied)"),
    ("running", "noop", "it is still running after the stop"),
])
def test_a_preemption_that_does_not_free_the_gpu_fails_admission(status: str, stop: str, why: str) -> None:
    host = Host(status, stop)
    backend: Any = FakeBackend(host)
    with pytest.raises(ResourceError) as info:
        create_with_gpus(backend, spec(), Gpu(count=1), HOST, poll=0.01)
    message = info.value.message
    assert "could not preempt the interruptible job spot (run spot-run-1), which holds GPU GPU-0" in message
    assert why in message and "not started on a GPU still in use" in message
    assert "dtrun stop spot-run-1" in (info.value.hint or "")
    assert "urgent" not in host.states and host.states["spot"] == "running"  # our claim is gone, theirs kept
    assert host.calls[:2] == ["mark dtrun-preempted-spot", "stop spot"]


def test_a_preemption_that_stops_its_victim_admits_the_job() -> None:
    host = Host("running", "ok")
    notes: list[str] = []
    container = create_with_gpus(FakeBackend(host), spec(), Gpu(count=1), HOST, notify=notes.append,  # type: ignore[arg-type]
                                 poll=0.01)
    assert container.id == "urgent" and host.states == {"spot": "exited", "urgent": "created"}
    assert notes[-1] == "  GPU 0 (NVIDIA A100-SXM4-40GB)"


def test_a_victim_that_has_not_started_yet_is_waited_for_then_stopped() -> None:
    host = Host("created", "ok")
    listings = 0
    real = host.api.containers

    def containers(all: bool, filters: dict[str, str]) -> list[dict[str, Any]]:
        nonlocal listings
        listings += 1
        if listings == 3:  # its client starts it
            host.states["spot"] = "running"
        return real(all, filters)

    host.api.containers = containers  # type: ignore[method-assign]
    notes: list[str] = []
    container = create_with_gpus(FakeBackend(host), spec(), Gpu(count=1), HOST, notify=notes.append,  # type: ignore[arg-type]
                                 poll=0.01)
    assert notes[0].startswith("  waiting for 1 GPU: the interruptible job spot (created, not started")
    assert container.id == "urgent" and host.states == {"spot": "exited", "urgent": "created"}
    assert host.calls == ["mark dtrun-preempted-spot", "stop spot"] and listings >= 3
