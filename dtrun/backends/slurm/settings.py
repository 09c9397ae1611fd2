"""The `slurm.*` settings, checked once, with errors in the user's terms."""

from __future__ import annotations

import re
from dataclasses import field

from dtrun.errors import DtrunError
from dtrun.structs import struct

RUNTIMES = ("docker", "pyxis", "apptainer")
#: Environment variables the agent needs to reach an S3 store; passed to the job, never to its command.
STORE_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
             "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


@struct(frozen=True)
class Login:
    """Where Slurm's commands run: here (`local`) or on a login node (`ssh://user@host[:port]`)."""

    host: str | None = None
    user: str | None = None
    port: int | None = None

    @property
    def local(self) -> bool:
        return self.host is None

    @property
    def destination(self) -> str:
        assert self.host is not None
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        if self.local:
            return "local"
        return f"ssh://{self.destination}" + (f":{self.port}" if self.port else "")

    @classmethod
    def parse(cls, value: str) -> Login:
        value = value.strip()
        if value in ("", "local"):
            return cls()
        match = re.fullmatch(r"ssh://(?:([^@/:\s]+)@)?([^@/:\s]+)(?::(\d+))?/?", value)
        if not match:
            raise DtrunError(f"slurm.login '{value}' is neither 'local' nor ssh://user@host",
                             hint="e.g. `dtrun config set slurm.login ssh://me@login.cluster.org`")
        user, host, port = match.groups()
        return cls(host=host, user=user, port=int(port) if port else None)


@struct(frozen=True)
class SlurmSettings:
    login: Login = field(default_factory=Login)
    partition: str | None = None
    account: str | None = None
    runtime: str = "docker"
    #: Where images are pushed for the nodes to pull (`host:port/prefix`); None: the nodes use the
    #: image as it is (login local and runtime docker: the image built here).
    registry: str | None = None
    #: docker runtime: hand Slurm's GPUs to the container with `--gpus`. False on nodes whose GPUs
    #: Docker cannot see (the test cluster's fake GPUs): CUDA_VISIBLE_DEVICES is passed as Slurm set it.
    docker_gpus: bool = True
    #: The Python in the image that runs the agent.
    agent_python: str = "python"
    #: Where Slurm writes each job's own output (the agent's diagnostics; the job's log is in the store).
    output_dir: str = "/tmp"
    stop_grace: float = 10.0
    #: An ssh config file for the login node, used instead of ~/.ssh/config (`ssh -F`).
    ssh_config: str | None = None
    #: Every job's time limit (`--time`), in seconds; None: the partition's default.
    time_limit: int | None = None

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise DtrunError(f"slurm.runtime '{self.runtime}' is not one of {', '.join(RUNTIMES)}",
                             hint="pyxis: srun --container-image (NVIDIA clusters); apptainer: apptainer exec "
                             "docker://...; docker: nodes with a Docker daemon")
        for name in ("partition", "account"):
            value = getattr(self, name)
            if value is not None and not re.fullmatch(r"[A-Za-z0-9_.,-]+", value):
                raise DtrunError(f"slurm.{name} '{value}' is not a valid Slurm {name} name",
                                 hint="`dtrun hosts` lists the partitions of the cluster")

    @classmethod
    def from_options(cls, options: dict[str, str]) -> SlurmSettings:
        """`slurm.*` settings (from `dtrun config set slurm.KEY` or `DTRUN_SLURM_KEY`) -> checked settings."""
        known = {"login", "partition", "account", "runtime", "registry", "docker_gpus", "agent_python",
                 "output_dir", "stop_grace", "ssh_config", "time_limit"}
        values = {k: v for k, v in options.items() if k not in IGNORED}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DtrunError(f"unknown setting 'slurm.{unknown[0]}'",
                             hint=f"slurm settings: {', '.join('slurm.' + k for k in sorted(known))}")
        kwargs: dict[str, object] = {k: v for k, v in values.items() if k in ("partition", "account", "runtime",
                                                                                "registry", "agent_python",
                                                                                "output_dir", "ssh_config")}
        kwargs["login"] = Login.parse(values.get("login", "local"))
        if "docker_gpus" in values:
            flag = values["docker_gpus"].strip().lower()
            if flag not in ("true", "false", "1", "0", "yes", "no"):
                raise DtrunError(f"slurm.docker_gpus '{values['docker_gpus']}' is not true or false",
                                 hint="false on nodes whose GPUs Docker cannot see (the test cluster's fake GPUs)")
            kwargs["docker_gpus"] = flag in ("true", "1", "yes")
        if "stop_grace" in values:
            try:
                kwargs["stop_grace"] = float(values["stop_grace"])
            except ValueError:
                raise DtrunError(f"slurm.stop_grace '{values['stop_grace']}' is not a number of seconds",
                                 hint="e.g. `dtrun config set slurm.stop_grace 30`") from None
        if "time_limit" in values:
            kwargs["time_limit"] = parse_duration(values["time_limit"])
        return cls(**kwargs)  # type: ignore[arg-type]


def parse_duration(text: str) -> int:
    """`slurm.time_limit`: seconds, or `90s`, `30m`, `4h`, `2d` -> seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text.lower())
    if not match or int(match.group(1)) == 0:
        raise DtrunError(f"slurm.time_limit '{text}' is not a duration",
                         hint="seconds, or a number with s, m, h or d: `dtrun config set slurm.time_limit 4h`")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


#: `DTRUN_SLURM_DIR` names the folder `scripts/start-slurm` keeps its cluster in: not a setting.
IGNORED = frozenset({"dir"})
