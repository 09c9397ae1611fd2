"""Dev environments (`provider: lab | notebook | code`): the app's port, its per-job token and its URL.

A dev-environment job says which app it runs and on which of its ports in two variables of its plan
(`DTRUN_APP`, `DTRUN_APP_PORT`); neither is secret, so both may sit in the plan and the store. The access
token is different: the engine makes a new one each time the job starts (`new_token`), hands it to the
container only (`DTRUN_APP_TOKEN`, masked like a secret in the logs it stores) and keeps it for the user
who started the job in a 0600 file on the client (`save_token`), from which the URL can be shown again.

The app listens on one of the ports dtrun publishes (`PORT_<n>`, after the user's own `ports: N`), so the
address Docker publishes is the address of the app: there is no second port number to keep in step.
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


def app_command(setup: list[str], launch: str) -> list[str]:
    """One bash that runs the setup commands, then replaces itself by the app (`exec`, so it gets signals).

    `launch` is shell text: it reads the port (`$PORT_<n>`, set by the backend) and the token
    (`$DTRUN_APP_TOKEN`, set by the engine) when the container starts, never from the plan.
    """
    script = "\n".join([*setup, f"exec {launch}"])
    return ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script]


def port_ref(env: dict[str, str]) -> str:
    """`"$PORT_1"`: the shell reference to the app's port, quoted for the launch line."""
    return '"$' + env[APP_PORT_ENV] + '"'


def token_ref() -> str:
    return '"$' + TOKEN_ENV + '"'


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


def save_token(job_id: str, token: str) -> Path:
    """Keep the token where only this user reads it (0700 folder, 0600 file), never in the store."""
    folder = tokens_dir()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / f"{job_id}.token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token)
    path.chmod(0o600)
    return path


def load_token(job_id: str) -> str | None:
    """The token of a job this user started on this client, if it is still there."""
    path = tokens_dir() / f"{job_id}.token"
    return path.read_text().strip() if path.is_file() else None
