"""A running job's published ports and dev-environment app, as its user reaches them.

When a job with ports starts, the engine asks the backend where they are published and to bring the
ones this client cannot reach (an ssh:// host's loopback) to this client (`Backend.forward_ports`); the
forwards last until the job's container ends. It reports each port as an event and, for a dev
environment (`provider: lab | notebook | code`), watches the app's URL and reports it (with the token,
or code-server's password) once the app answers, so the printed URL works when it is printed. The same
addresses go to a 0600 file on this client (`devenv.save_urls`): `dtrun status` and a detached run's
parent read them there, never from the store, which sees only `***` for the token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dtrun.providers import devenv

if TYPE_CHECKING:
    from dtrun.backends.base import Backend, PublishedPort
    from dtrun.plan import Job

#: How often the app's URL is tried until it answers.
POLL_S = 0.2


def is_app(job: Job) -> bool:
    return devenv.APP_ENV in job.env


def start_token(job: Job, job_id: str, masked: list[str]) -> dict[str, str]:
    """A dev environment's env for this start: a new token, masked like a secret, saved for this user."""
    if not is_app(job):
        return {}
    token = devenv.new_token()
    masked.append(token)
    devenv.save_token(job_id, token)
    return devenv.token_env(job.env[devenv.APP_ENV], token)


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether an HTTP server answers at `url` (any status: a login page or a refusal is an answer).
    urllib.request is imported here, not by every run (http.client, ssl and email: ~15 ms)."""
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def port_lines(ports: list[PublishedPort]) -> list[str]:
    return [f"  {p.name} ({p.container_port} in the job) -> http://{p.url}" for p in ports]


def app_lines(urls: dict[str, str]) -> list[str]:
    return [f"  {name}: {url}" for name, url in urls.items()]


class Exposure:
    """One running job's ports and app; `close` when its container ended (forwards and files go)."""

    def __init__(self, backend: Backend, handle: Any, job: Job, job_id: str, say: Callable[[str], None]) -> None:
        self.job_id = job_id
        self.done = threading.Event()
        self.watcher: threading.Thread | None = None
        ports = backend.published_ports(handle) if job.ports else []
        self.ports, self._close = backend.forward_ports(ports)
        for line in port_lines(self.ports):
            say(line)
        self.urls = {p.name: f"http://{p.url}" for p in self.ports}
        app, port_name = job.env.get(devenv.APP_ENV), job.env.get(devenv.APP_PORT_ENV)
        address = next((p.url for p in self.ports if p.name == port_name), None)
        if self.urls:
            devenv.save_urls(job_id, self.urls)
        if app and address:
            token = devenv.load_token(job_id) or ""
            self.watcher = threading.Thread(target=self._watch, args=(app, address, token, say), daemon=True)
            self.watcher.start()

    def _watch(self, app: str, address: str, token: str, say: Callable[[str], None]) -> None:
        url = devenv.app_url(app, address, token)
        while not self.done.is_set():
            if answers(url):
                found = devenv.app_urls(app, address, token)
                self.urls.update(found)
                devenv.save_urls(self.job_id, self.urls)
                for line in app_lines(found):
                    say(line)
                return
            self.done.wait(POLL_S)

    def close(self) -> None:
        self.done.set()
        if self.watcher is not None:
            self.watcher.join(timeout=5)
        self._close()
        devenv.forget(self.job_id)
