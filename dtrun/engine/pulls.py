"""Pulling the docker provider's image from a private registry with the workflow's `registry_auth`.

The credentials travel on the `Job` as written (usually `${{ secrets.NAME }}` markers), outside its
fingerprint; they are resolved here, when the job starts, and handed to the backend's `pull_image`
only. Nothing here puts the password in an event, a record or an error: a backend's message that
happens to repeat it has it replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from dtrun.backends.base import Backend, Credentials
from dtrun.errors import DtrunError
from dtrun.plan import Job
from dtrun.spec.templating import resolve_secrets


def credentials(job: Job, secrets: Mapping[str, str]) -> Credentials | None:
    """The job's `registry_auth` with its secrets resolved; None when it has none."""
    auth = job.registry_auth
    if auth is None:
        return None
    try:
        return Credentials(resolve_secrets(auth.username, secrets), resolve_secrets(auth.password, secrets))
    except DtrunError as exc:
        raise DtrunError(f"workflow '{job.workflow}': registry_auth: {exc.message}", hint=exc.hint) from None


def pull_private_image(backend: Backend, job: Job, secrets: Mapping[str, str], say: Callable[[str], None]) -> None:
    """Pull the job's image as its `registry_auth` user, unless the host has it already (then, like any
    image of the docker provider, it is used as it is)."""
    ref = job.image.user_image
    auth = credentials(job, secrets)
    if ref is None or auth is None or backend.image(ref) is not None:
        return
    say(f"  pulling {ref} as {auth.username} (registry_auth)")
    try:
        backend.pull_image(ref, auth)
    except DtrunError as exc:
        message = exc.message.replace(auth.password, "***") if auth.password else exc.message
        raise type(exc)(f"workflow '{job.workflow}': {message}",
                        hint="check `registry_auth` (username, and the password's secret: `dtrun secrets add "
                             "NAME`) and that the image exists in that registry") from None
