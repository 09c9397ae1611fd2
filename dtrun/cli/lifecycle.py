"""What the run-managing commands (status, logs, stop, resume) share: a `Session` for the repository the
current folder is in, rendering to the terminal, and how a job's state is shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dtrun.api import Session
    from dtrun.store import JobRecord, Store


def session(host: str | None = None) -> Session:
    """The session of the current folder, its events rendered for the terminal."""
    from dtrun.api import Session
    from dtrun.cli.render import Renderer

    return Session(host=host, listener=Renderer())


def display_state(store: Store, job: JobRecord) -> str:
    """A job's state as users should see it: an unfinished job asked to stop shows STOPPING/ABORTING."""
    if job.state.finished:
        return job.state.value
    from dtrun.engine import control

    action = control.requested(store, job.id)
    if action == control.ABORT:
        return "ABORTING"
    if action == control.STOP:
        return "STOPPING"
    return job.state.value
