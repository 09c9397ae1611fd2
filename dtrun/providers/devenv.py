"""Dev environments (`provider: lab | notebook | code`): the app's port, its per-job token and its URL.

A dev-environment job says which app it runs and on which of its ports in two variables of its plan
(`DTRUN_APP`, `DTRUN_APP_PORT`); neither is secret, so both may sit in the plan and the store. The access
token is different: the engine makes a new one each time the job starts (`new_token`), hands it to the
container only (`DTRUN_APP_TOKEN`, masked like a secret in the logs it stores) and keeps it for the user
who started the job in a 0600 file on the client (`save_token`), from which the URL can be shown again.

The app listens on one of the ports dtrun publishes (`PORT_<n>`, after the user's own `ports: N`), so the
address the backend publishes is the address of the app: there is no second port number to keep in step.
It reads its token from its own variable (`JUPYTER_TOKEN`, code-server's `PASSWORD`), set by the engine.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

APP_ENV = "DTRUN_APP"
APP_PORT_ENV = "DTRUN_APP_PORT"
TOKEN_ENV = "DTRUN_APP_TOKEN"

#: What each app's URL looks like once the host's address is known; the code-server password is typed in.
_PATHS = {"lab": "/lab?token={token}", "notebook": "/tree?token={token}", "code": "/"}


def app_env(app: str, user_ports: int) -> dict[str, str]:
    """The plan's variables of a dev-environment job: the app, and the port after the user's own."""
    return {APP_ENV: app, APP_PORT_ENV: f"PORT_{user_ports}"}


#: The variable each app reads its token from, which the engine sets to the token as well (so the
#: app's command line, which `ps` shows, never carries it).
APP_TOKEN_VARS = {"lab": "JUPYTER_TOKEN", "notebook": "JUPYTER_TOKEN", "code": "PASSWORD"}


def app_port(user_ports: int) -> int:
    """The app's port in its job: the one after the user's own (`PORT_<n>` is FIRST_PORT + n on every
    backend, see `dtrun.backends.base`)."""
    from dtrun.backends.base import FIRST_PORT

    return FIRST_PORT + user_ports


def token_env(app: str, token: str) -> dict[str, str]:
    """What the engine adds to a dev environment's env when it starts: the token, under its names."""
    env = {TOKEN_ENV: token}
    if app in APP_TOKEN_VARS:
        env[APP_TOKEN_VARS[app]] = token
    return env


def new_token() -> str:
    """A fresh token: URL-safe, so it goes into `?token=` as is."""
    return secrets.token_urlsafe(24)


def app_url(app: str, address: str, token: str) -> str:
    """The URL the user opens: `address` is `host:port` as the client reaches the published port."""
    return f"http://{address}" + _PATHS.get(app, "/").format(token=token)


def announce(env: dict[str, str], ports: list[tuple[str, str]], token: str) -> list[str]:
    """The lines that tell the user where the app is: its URL (and code-server's password).

    `ports` are the job's published ports as (PORT_<n>, host:port) pairs.
    """
    app, port_name = env.get(APP_ENV), env.get(APP_PORT_ENV)
    address = next((where for name, where in ports if name == port_name), None)
    if not app or address is None:
        return []
    lines = [f"  {app}: {app_url(app, address, token)}"]
    if app == "code":
        lines.append(f"  code password: {token}")
    return lines


def tokens_dir() -> Path:
    from dtrun.config import data_home

    return data_home() / "devenv"


def _write_private(path: Path, text: str) -> Path:
    """A file only this user reads (0700 folder, 0600 file), written before its mode could be wider."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)
    return path


def save_token(job_id: str, token: str) -> Path:
    """Keep the token where only this user reads it (0700 folder, 0600 file), never in the store."""
    return _write_private(tokens_dir() / f"{job_id}.token", token)


def load_token(job_id: str) -> str | None:
    """The token of a job this user started on this client, if it is still there."""
    path = tokens_dir() / f"{job_id}.token"
    return path.read_text().strip() if path.is_file() else None


def save_urls(job_id: str, urls: dict[str, str]) -> Path:
    """Where the process running the job reaches its ports and app (after any ssh forward), for
    `dtrun status` and a detached run's parent: 0600 as well, since an app's URL carries its token."""
    import json

    return _write_private(tokens_dir() / f"{job_id}.urls.json", json.dumps(urls))


def load_urls(job_id: str) -> dict[str, str] | None:
    import json

    path = tokens_dir() / f"{job_id}.urls.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


def forget(job_id: str) -> None:
    """The job finished: its token and URLs are of no use any more, so they do not linger."""
    for name in (f"{job_id}.token", f"{job_id}.urls.json"):
        (tokens_dir() / name).unlink(missing_ok=True)


def app_urls(app: str, address: str, token: str | None) -> dict[str, str]:
    """The app's entries of a job's `urls`: its URL (with the token when this user has it) and, for
    code-server, the password, which is typed in rather than put in the URL."""
    if token is None:
        return {app: app_url(app, address, "").removesuffix("?token=")}
    urls = {app: app_url(app, address, token)}
    if app == "code":
        urls["code password"] = token
    return urls
