"""The Engine API client's exceptions: the daemon's refusals with their status and its own message.

Named as docker-py named them (`NotFound`, `ImageNotFound`, `APIError`), so the backend's call sites read
the same; `errors.py` one level up turns them into dtrun's errors. A daemon that does not answer at all
raises `DaemonUnreachable`, which is also a `ConnectionError` (restart.py treats it as a lost connection).
"""

from __future__ import annotations


class DockerException(Exception):
    """Anything the client raises about the daemon or a container."""


class APIError(DockerException):
    """The daemon answered with an error status; `explanation` is its message (the `message` field)."""

    def __init__(self, message: str, status_code: int = 0, explanation: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.explanation = explanation or message

    def __str__(self) -> str:
        return f"{self.status_code} {self.args[0]}" if self.status_code else str(self.args[0])


class NotFound(APIError):
    """404: no such container, volume, network or path."""


class ImageNotFound(NotFound):
    """404 for an image (inspect, tag, remove) or a pull of an image that does not exist."""


class Conflict(APIError):
    """409: a name in use, a container still running, a volume still mounted."""


class DaemonUnreachable(DockerException, ConnectionError):
    """No answer: the socket refused, reset or closed the connection, or the answer was cut short."""


class ContainerError(DockerException):
    """`containers.run` of a command that exited non-zero; `stderr` is what it printed there."""

    def __init__(self, image: str, command: object, exit_status: int, stderr: bytes) -> None:
        self.image, self.command, self.exit_status, self.stderr = image, command, exit_status, stderr
        text = stderr.decode(errors="replace").strip()
        super().__init__(f"Command '{command}' in image '{image}' returned non-zero exit status {exit_status}"
                         + (f": {text}" if text else ""))


def from_status(status: int, message: str, *, image: bool = False) -> APIError:
    """The exception for an error answer: NotFound (ImageNotFound where `image`), Conflict, else APIError."""
    kind: type[APIError] = APIError
    if status == 404:
        lower = message.lower()
        kind = ImageNotFound if image or "no such image" in lower or "pull access denied" in lower else NotFound
    elif status == 409:
        kind = Conflict
    return kind(message, status, message)
