"""A Docker daemon that goes away under a running job (restarted, crashed, or the connection lost).

When dockerd stops, it closes its API server first: the job's log stream ends (or breaks) and every
call after that is refused until the daemon is back. Without live-restore the daemon stops its
containers as it goes, and after its restart it reports them exited. So the backend treats a broken
connection during `logs` or `wait` as "the daemon may be gone": it waits a bounded time for the daemon
to answer again, then looks at the container. Still running: the connection only blipped, keep
waiting. Exited (not cleanly): the daemon restarted under the job; the exit says so
(`Exit.interrupted`), and the engine saves the outputs from the exited container as for any exit.
The daemon not back in time: `DaemonRestarted`, a clear error instead of a hang or a traceback.
"""

from __future__ import annotations

import os
import time
from typing import Any

from dtrun.errors import DaemonRestarted

#: how long a job's client waits for a vanished daemon to answer again (`DTRUN_DAEMON_RETURN_TIMEOUT`)
DEFAULT_RETURN = 45.0


def return_timeout() -> float:
    try:
        return max(1.0, float(os.environ.get("DTRUN_DAEMON_RETURN_TIMEOUT") or DEFAULT_RETURN))
    except ValueError:
        return DEFAULT_RETURN


def is_connection_lost(exc: BaseException) -> bool:
    """A failure that means the daemon did not answer (refused, reset, broken stream, shutting down)."""
    from dtrun.backends.docker.engineapi import errors as api_errors

    if isinstance(exc, (api_errors.DaemonUnreachable, ConnectionError)):  # refused, reset, cut short
        return True
    if isinstance(exc, api_errors.APIError):
        text = str(getattr(exc, "explanation", None) or exc).lower()
        return "shutting down" in text or "connection refused" in text
    return False


def await_daemon(client: Any, host: str, handle: Any = None, timeout: float | None = None) -> None:
    """Return once the daemon answers (a ping, and a look at one of `handle`'s volumes, which a daemon
    on its way out no longer gives); `DaemonRestarted` if it does not within the bound."""
    limit = return_timeout() if timeout is None else timeout
    deadline = time.monotonic() + limit
    volumes = _volumes(handle)
    while True:
        try:
            if client.ping():
                if volumes:
                    client.api.inspect_volume(volumes[0])
                return
        except Exception as exc:  # any failure to answer is "not back yet"
            if not is_connection_lost(exc) and not _is_transient(exc):
                raise
        if time.monotonic() >= deadline:
            raise DaemonRestarted(
                f"{DaemonRestarted.REASON} (or stopped answering; {host}) while the job ran, and it did not "
                f"answer again within {limit:g} s",
                hint="once the daemon is back, `dtrun status` finishes the job from its container "
                     "(DTRUN_DAEMON_RETURN_TIMEOUT waits longer)")
        time.sleep(0.5)


def _is_transient(exc: BaseException) -> bool:
    from dtrun.backends.docker.engineapi import errors as api_errors

    return isinstance(exc, api_errors.APIError) and (getattr(exc, "status_code", None) or 0) >= 500


def exit_after_loss(client: Any, host: str, handle: Any) -> Any:
    """The container's exit once the daemon answers again, or None if it is still running (a blip).

    Called after the connection broke during the job: an exit other than 0 then is the daemon's
    doing (it stops its containers when it stops), so the exit carries that reason.
    """
    from dtrun.backends.base import Exit
    from dtrun.backends.docker.engineapi import errors as api_errors

    await_daemon(client, host, handle)
    try:
        state = client.api.inspect_container(handle.id)["State"]
    except api_errors.NotFound:
        raise DaemonRestarted(f"{DaemonRestarted.REASON} ({host}) while the job ran, and its container "
                              f"{handle.name} is gone, with the outputs it had not saved",
                              hint="run it again") from None
    if state.get("Running") or state.get("Restarting"):
        return None
    code = int(state.get("ExitCode") or 0)
    if code == 0:
        return Exit(code=0, oom_killed=bool(state.get("OOMKilled")))
    return Exit(code=code, oom_killed=False,
                interrupted=f"{DaemonRestarted.REASON} ({host}) while the job ran (its container was stopped, "
                            f"exit {code}); the outputs it had written were saved, `dtrun resume` continues it")


#: exits a daemon's own shutdown gives its containers: SIGKILL, SIGTERM (through docker-init), or none
SHUTDOWN_EXITS = (137, 143, 255)


def going_away(client: Any, handle: Any, window: float = 1.5) -> bool:
    """Whether the daemon is shutting down (or gone) just after the job exited with a shutdown's code.

    A stopping dockerd stops its containers before it stops answering, so a wait can return such an
    exit while the daemon is already on its way out; for `window` seconds, a ping and a look at one of
    the job's volumes (the first thing a stopping daemon closes) tell whether it is."""
    volumes = _volumes(handle)
    deadline = time.monotonic() + window
    while True:
        try:
            client.ping()
            if volumes:
                client.api.inspect_volume(volumes[0])
        except Exception as exc:
            return is_connection_lost(exc) or _is_transient(exc)
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def _volumes(handle: Any) -> list[str]:
    """The named volumes the container mounts (from its attributes at creation: no call)."""
    mounts = (getattr(handle, "attrs", None) or {}).get("Mounts") or []
    return [str(m["Name"]) for m in mounts if m.get("Type") == "volume" and m.get("Name")]
