"""The one error type users see.

Every failure caused by the user's input or environment is a `DtrunError`: the CLI prints it as
``file:line:col: message`` plus a hint and exits non-zero, never with a traceback. Anything else that
escapes is a bug in dtrun and is allowed to show its traceback.
"""

from __future__ import annotations

from pathlib import Path

from dtrun.structs import struct


@struct(frozen=True)
class Position:
    """Where a value came from: a file and a 1-based line and column."""

    file: Path
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        where = str(self.file)
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        return where


class DtrunError(Exception):
    """A problem the user can fix; carries where it is and a hint on how."""

    exit_code = 2

    def __init__(self, message: str, *, position: Position | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.position}: {self.message}" if self.position else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class SpecError(DtrunError):
    """The workflow or flow files are not valid."""


class ProjectError(DtrunError):
    """The current folder is not a dtrun project (no git repository, no workflow files)."""


class DockerUnavailable(DtrunError):
    """No Docker daemon answers at the chosen endpoint."""


class ResourceError(DtrunError):
    """The job asks for something the Docker host cannot give (a GPU, memory, ...)."""


class BuildError(DtrunError):
    """An image build failed; the message carries the failing step's log."""


class NotFound(DtrunError):
    """A run, job, tag or artifact that the user named does not exist."""


class BackendError(DtrunError):
    """The backend (a Docker daemon, a cluster) refused or failed an operation; the message says which."""


class ArtifactExportError(BackendError):
    """A job's output folder could not be copied out of its container: the daemon's archive of it broke
    off, ended early or was not a tar. Nothing of that artifact is stored (an earlier complete copy stays)."""


class InvalidReference(BackendError):
    """An image reference the Docker daemon cannot parse (`not a valid ref!`, upper case, a space): it is
    refused (400) before any image is looked for, so no pull or build can help; the text must be fixed."""

    def __init__(self, reference: str, reason: str, *, what: str = "", hint: str | None = None) -> None:
        super().__init__(f"{what + ' ' if what else ''}'{reference}' is not a valid image reference ({reason})",
                         hint=hint or REFERENCE_HINT)
        self.reference, self.reason = reference, reason


#: What an image reference looks like, for the hint of an `InvalidReference`.
REFERENCE_HINT = ("an image reference is [REGISTRY/]NAME[:TAG] or NAME@sha256:DIGEST, NAME in lower case "
                  "(letters, digits, '.', '_', '-', '/'), e.g. debian:bookworm-slim")


class DaemonRestarted(BackendError):
    """The backend's daemon went away under a running job (restarted, or lost): the job was cut short by
    its host, not by its own program, so its saved outputs can be resumed (`dtrun resume`)."""

    #: the words every such failure's message starts with (a job record's message carries them)
    REASON = "the Docker daemon restarted"
