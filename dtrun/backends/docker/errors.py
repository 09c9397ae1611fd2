"""Docker's exceptions become dtrun's, here and nowhere else.

The Engine API client (engineapi/) raises its own exceptions (`NotFound`, `APIError`, `DaemonUnreachable`...);
outside this package nothing knows those types. Every call to the daemon that can fail for a reason the
user can act on goes through `translated(...)`, which re-raises as a `DtrunError` subclass with Docker's
explanation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from dtrun.backends.docker.engineapi import errors as api_errors
from dtrun.errors import BackendError, DtrunError, NotFound


def explanation(exc: BaseException) -> str:
    """Docker's own words for a refusal (`explanation`), else the exception's text."""
    return str(getattr(exc, "explanation", None) or exc)


@contextlib.contextmanager
def translated(what: str, *, error: type[DtrunError] = BackendError, hint: str | None = None) -> Iterator[None]:
    """`what` failed: re-raise Docker's error as `error` (NotFound for a missing object)."""
    try:
        yield
    except api_errors.NotFound as exc:
        raise NotFound(f"{what}: {explanation(exc)}", hint=hint) from None
    except api_errors.DockerException as exc:
        raise error(f"{what}: {explanation(exc)}", hint=hint) from None


@contextlib.contextmanager
def ignored() -> Iterator[None]:
    """For clean-up calls whose failure changes nothing (the object is already gone, or busy)."""
    with contextlib.suppress(api_errors.APIError):
        yield


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, api_errors.NotFound)


def is_conflict(exc: BaseException) -> bool:
    return getattr(exc, "status_code", None) == 409
