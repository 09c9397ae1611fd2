"""`dtrun doctor`'s checks: what a run needs from this machine, each with a fix.

The backend checks what it needs itself (`registry.diagnose_backend`: for Docker the endpoint, BuildKit,
the base image, GPUs, the ssh tunnel); what every backend needs is checked here: the store (through
the same probe every run makes, so doctor and a run say the same thing) and, when asked, a registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dtrun.backends.base import Check

if TYPE_CHECKING:
    from dtrun.config import Settings

__all__ = ["Check", "check_registry", "check_store", "run_checks"]


def run_checks(settings: Settings, host: str | None = None, *, registry: str | None = None) -> list[Check]:
    """The backend's checks, then the store's and the registry's."""
    from dtrun.backends.registry import DEFAULT, diagnose_backend, needs_registry

    needed_by = (settings.backend or DEFAULT) if needs_registry(settings) else None
    return [*diagnose_backend(settings, host), check_store(settings.store),
            check_registry(registry, needed_by=needed_by)]


def check_store(url: str) -> Check:
    """Write, read back and delete a small object where runs keep their records and artifacts."""
    from dtrun.errors import DtrunError
    from dtrun.store.store import Store

    try:
        Store(url, "doctor").check()
    except DtrunError as exc:  # the URL cannot be opened (`StoreUnavailable` and the rest)
        return Check("store", "FAIL", exc.message, exc.hint)
    return Check("store", "ok", f"{url}: write, read and delete work")


def check_registry(registry: str | None, *, needed_by: str | None = None) -> Check:
    """Whether an image registry answers its API (`/v2/`): `dtrun action publish` pushes to one, and
    backends whose nodes pull their images (`needed_by`) need one."""
    if not registry:
        if needed_by:
            return Check("registry", "warn", f"the {needed_by} backend runs images from a registry, and none was "
                         "checked", "check the one it uses: dtrun doctor --registry HOST:PORT")
        return Check("registry", "skip", "not needed: the Docker backend runs images on the host that builds them "
                     "(check one with --registry HOST:PORT)")
    import urllib.error
    import urllib.request

    host = registry.split("://", 1)[-1].split("/", 1)[0]
    loopback = host.split(":")[0] in ("localhost", "127.0.0.1", "::1", "[::1]")
    schemes = ["http", "https"] if loopback else ["https"]  # Docker trusts plain HTTP only on loopback
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({})) if loopback else \
        urllib.request.build_opener()
    errors = []
    for scheme in schemes:
        try:
            with opener.open(f"{scheme}://{host}/v2/", timeout=10) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            errors.append(_reason(exc))
            continue
        if status in (200, 401):
            auth = " (asks for credentials)" if status == 401 else ""
            return Check("registry", "ok", f"{host} answers the registry API over {scheme}{auth}")
        errors.append(f"HTTP {status} from {scheme}://{host}/v2/")
    return Check("registry", "FAIL", f"no registry answers at {host}: {errors[-1]}",
                 "check the address and port (e.g. 127.0.0.1:5000) and that the registry runs; "
                 "`docker login HOST` for private ones")


def _reason(exc: BaseException) -> str:
    """The cause in a few words (`Connection refused`), not nested wrappers."""
    import urllib.error

    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        return _reason(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0] if text else text
