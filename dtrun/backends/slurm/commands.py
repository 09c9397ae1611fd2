"""Running Slurm's commands where they work: on this machine (`slurm.login: local`) or on a login node
(`ssh://user@host`), over one multiplexed ssh connection for the whole dtrun command.

The first call opens an ssh master connection (ControlMaster, its socket in a private temporary
folder); every later call of the same `SlurmCommands` reuses it, so `dtrun status` costs one ssh
handshake however many squeue calls it makes. `close()` ends it.

Secrets travel as environment variables: locally in the process environment, over ssh as `export`
lines in the remote shell's standard input (never in a command line, which `ps` would show).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import subprocess
import tempfile
from collections.abc import Mapping

from dtrun.backends.slurm.settings import Login
from dtrun.errors import DtrunError
from dtrun.structs import struct


class SlurmError(DtrunError):
    """A Slurm command failed; the message carries its own words."""


@struct(frozen=True)
class Output:
    code: int
    stdout: str
    stderr: str


class SlurmCommands:
    def __init__(self, login: Login, *, timeout: float = 60.0, ssh_config: str | None = None) -> None:
        self.login = login
        self.timeout = timeout
        #: `slurm.ssh_config`: an ssh config file used instead of ~/.ssh/config (`ssh -F`).
        self.ssh_config = ssh_config
        self._control_dir: str | None = None

    # -- public --------------------------------------------------------------------------------------
    def run(self, args: list[str], *, input: str | None = None, env: Mapping[str, str] | None = None,
            check: bool = True) -> Output:
        """Run one Slurm command; with `check`, a non-zero exit becomes a `SlurmError` quoting it."""
        out = self._local(args, input, env) if self.login.local else self._ssh(args, input, env)
        if check and out.code != 0:
            raise SlurmError(f"{args[0]} failed: {_first_error(out.stderr) or f'exit code {out.code}'}",
                             hint=self._hint())
        return out

    def close(self) -> None:
        if self._control_dir is None:
            return
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run([*self._ssh_base(), "-O", "exit", self.login.destination], capture_output=True,
                           timeout=10, check=False)
        import shutil

        shutil.rmtree(self._control_dir, ignore_errors=True)
        self._control_dir = None

    def __enter__(self) -> SlurmCommands:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- here ----------------------------------------------------------------------------------------
    def _local(self, args: list[str], input: str | None, env: Mapping[str, str] | None) -> Output:
        try:
            proc = subprocess.run(args, input=input, capture_output=True, text=True, timeout=self.timeout,
                                  env={**os.environ, **(env or {})}, check=False)
        except FileNotFoundError:
            raise SlurmError(f"{args[0]} is not installed on this machine",
                             hint="run dtrun on a login node of the cluster, or set slurm.login to "
                             "ssh://user@login-node") from None
        except subprocess.TimeoutExpired:
            raise SlurmError(f"{args[0]} did not answer within {self.timeout:g}s",
                             hint="is slurmctld running? `scontrol ping` tells") from None
        return Output(proc.returncode, proc.stdout, proc.stderr)

    # -- over ssh ------------------------------------------------------------------------------------
    def _ssh_base(self) -> list[str]:
        if self._control_dir is None:
            self._control_dir = tempfile.mkdtemp(prefix="dtrun-ssh-")
        base = ["ssh", "-o", "ControlMaster=auto", "-o", f"ControlPath={self._control_dir}/%C",
                "-o", "ControlPersist=120", "-o", "BatchMode=yes"]
        if self.ssh_config:
            base += ["-F", self.ssh_config]
        if self.login.port:
            base += ["-p", str(self.login.port)]
        return base

    def _ssh(self, args: list[str], input: str | None, env: Mapping[str, str] | None) -> Output:
        script = remote_script(args, input, env)
        try:
            proc = subprocess.run([*self._ssh_base(), self.login.destination, "bash -s"], input=script,
                                  capture_output=True, text=True, timeout=self.timeout, check=False)
        except FileNotFoundError:
            raise SlurmError("ssh is not installed", hint="install an OpenSSH client") from None
        except subprocess.TimeoutExpired:
            raise SlurmError(f"{args[0]} on {self.login} did not answer within {self.timeout:g}s",
                             hint=f"check `ssh {self.login.destination} scontrol ping`") from None
        if proc.returncode == 255:
            raise SlurmError(f"cannot reach the login node {self.login}: {_first_error(proc.stderr)}",
                             hint="dtrun uses ssh with your keys and ~/.ssh/config (BatchMode: no passwords)")
        return Output(proc.returncode, proc.stdout, proc.stderr)

    def _hint(self) -> str:
        return "`dtrun hosts` shows the partitions and what they offer; SLURM_CONF selects the cluster here" \
            if self.login.local else f"try the same command on {self.login.destination}"


def remote_script(args: list[str], input: str | None, env: Mapping[str, str] | None) -> str:
    """The shell text sent to `bash -s` on the login node: exports, then the command, its input as a
    heredoc with a delimiter that cannot occur in it."""
    bad = [n for n in (env or {}) if not n.isidentifier()]
    if bad:
        raise SlurmError(f"'{bad[0]}' is not a valid environment variable name")
    lines = [f"export {name}={shlex.quote(value)}" for name, value in (env or {}).items()]
    command = shlex.join(args)
    if input is None:
        lines.append(f"exec {command} </dev/null")
    else:
        delimiter = "DTRUN_" + secrets.token_hex(8)
        while delimiter in input:
            delimiter = "DTRUN_" + secrets.token_hex(8)
        body = input if input.endswith("\n") else input + "\n"
        lines.append(f"exec {command} <<'{delimiter}'\n{body}{delimiter}")
    return "\n".join(lines) + "\n"


def _first_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower():
            return line
    return lines[0] if lines else ""
