"""The addresses of running jobs' ports and apps, for the commands that show them after the start:
`dtrun status`, a detached run's parent, `dtrun attach`.

What the process running a job wrote to its 0600 file on this client (`devenv.save_urls`) is what the
user reaches (after any ssh forward, with the app's token); without it (a run started from another
client, or by someone else) the backend says where the ports are published, and an app's URL comes
without its token, which only the user who started the job has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from dtrun.engine.exposure import app_lines, port_lines
from dtrun.errors import DtrunError
from dtrun.providers import devenv
from dtrun.spec.models import DEV_ENVIRONMENTS
from dtrun.store import JobRecord, State, Store

if TYPE_CHECKING:
    from dtrun.backends.base import Backend, Close, PublishedPort

#: How long `dtrun run -d` waits for a dev environment's app to answer before it returns anyway.
DETACHED_WAIT_S = 600.0


def _app_entries(job: JobRecord, ports: list[PublishedPort]) -> dict[str, str]:
    """A dev environment's app listens on its last port (after the user's own `ports: N`)."""
    if job.provider not in DEV_ENVIRONMENTS or not ports:
        return {}
    app_port = max(ports, key=lambda p: p.container_port)
    return devenv.app_urls(job.provider, app_port.url, devenv.load_token(job.id))


def job_urls(backend: Callable[[], Backend], job: JobRecord) -> dict[str, str]:
    """A running job's ports and app as this user reaches them (name -> URL); {} once it finished."""
    if job.state != State.RUNNING or not job.container:
        return {}
    saved = devenv.load_urls(job.id)
    if saved is not None:
        return saved
    try:
        handle = backend().get(job.container)
        found = backend().published_ports(handle) if handle is not None else []
    except DtrunError:  # the host is out of reach: `status` still shows what the store knows
        return {}
    ports = [p for p in found if p.reachable]
    return {**{p.name: f"http://{p.url}" for p in ports}, **_app_entries(job, ports)}


def wait_app_urls(store: Store, run: str, alive: Callable[[], bool],
                  timeout: float = DETACHED_WAIT_S) -> list[str]:
    """A detached run's parent: the lines of its dev environments' URLs once their apps answer (the
    background process writes them), or [] when the run ends, its process dies, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        record = store.load_run(run)
        jobs = store.load_jobs(record.jobs) if record.jobs else []
        apps = [j for j in jobs if j.provider in DEV_ENVIRONMENTS and not j.state.finished]
        if record.jobs and not apps:
            return []
        found = [devenv.load_urls(j.id) or {} for j in apps]
        if apps and all(j.provider in urls for j, urls in zip(apps, found, strict=True)):
            return [line for urls in found for line in app_lines({k: v for k, v in urls.items()
                                                                   if not k.startswith("PORT_")})]
        time.sleep(0.3)
    return []


def attach(backend: Backend, store: Store, jobs: list[JobRecord], say: Callable[[str], None],
           poll_s: float = 0.5) -> list[Close]:
    """Bring a run's ports to this client again (ssh forwards for an ssh:// host) and say where they are;
    the forwards last until the returned functions are called.

    A job not running yet (its image building, its container starting: `dtrun attach` right after
    `dtrun run -d`) is watched on a thread, and its ports are forwarded and said once it runs."""
    import threading

    closes: list[Close] = []
    pending = [job for job in jobs if not job.state.finished and not _forward(backend, job, say, closes)]
    if not pending:
        return closes
    stopped = threading.Event()
    lock = threading.Lock()
    later: list[Close] = []

    def watch() -> None:
        waiting = list(pending)
        while waiting and not stopped.wait(poll_s):
            for job in list(waiting):
                try:
                    now = store.load_job(job.id)
                except DtrunError:
                    continue  # the store is out of reach for a moment: asked again at the next poll
                if now.state.finished:
                    waiting.remove(job)
                    continue
                with lock:
                    if stopped.is_set():
                        return
                    if _forward(backend, now, say, later):
                        waiting.remove(job)

    def close() -> None:
        stopped.set()
        with lock:
            for each in later:
                each()

    threading.Thread(target=watch, name="dtrun-attach", daemon=True).start()
    return [*closes, close]


def _forward(backend: Backend, job: JobRecord, say: Callable[[str], None], closes: list[Close]) -> bool:
    """Forward a running job's ports and say them (True); False for a job that is not running yet."""
    if job.state != State.RUNNING or not job.container:
        return False
    handle = backend.get(job.container)
    if handle is None:
        return False
    ports, close = backend.forward_ports(backend.published_ports(handle))
    closes.append(close)
    if ports:
        say(f"{job.workflow} (job {job.id}):")
    for line in [*port_lines(ports), *app_lines(_app_entries(job, ports))]:
        say(line)
    return True
