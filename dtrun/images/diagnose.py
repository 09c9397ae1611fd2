"""A failed image build explained in the user's terms: which workflow, which property, what it needed.

The builder knows the failing step and its log ("curl: (6) Could not resolve host: github.com"); the
user knows their workflow ("python: 3.7"). `explain_build_failure` joins the two through the image
spec's `Origin`: the step that installs Miniforge was there because the workflow asked for a Python the
base lacks, or called `conda`; the step that creates the conda environment, because of its `python`;
and so on. A failure it does not recognise keeps the builder's own message.
"""

from __future__ import annotations

import re

from dtrun.errors import BuildError
from dtrun.images.probe import BaseInfo
from dtrun.images.spec import ImageSpec
from dtrun.structs import struct

#: What a log says when the network, not the step, failed.
_OFFLINE = re.compile(
    r"Could not resolve host|Temporary failure in name resolution|Name or service not known|Failed to connect|"
    r"Network is unreachable|Connection refused|Connection timed out|CondaHTTPError|NewConnectionError|"
    r"Failed to establish a new connection|getaddrinfo failed|No address associated with hostname|"
    r"Could not connect to|error sending request|dns error", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s\"']+")
_HOST = re.compile(r"https?://([^/\s\"':]+)")

CONDA_HOST = "conda.anaconda.org"
UV_PYTHON_HOST = "github.com"


@struct(frozen=True)
class Step:
    """The failing step as `BuildLog.failure()` writes it: its title, then its output lines."""

    title: str
    lines: tuple[str, ...]

    @classmethod
    def parse(cls, failure: str) -> Step:
        text = failure.split("failing step: ", 1)[-1] if "failing step: " in failure else failure
        first, _, rest = text.partition("\n")
        return cls(first.strip(), tuple(line.strip() for line in rest.splitlines() if line.strip()))

    @property
    def offline(self) -> bool:
        return any(_OFFLINE.search(line) for line in self.lines)

    def host(self, default: str) -> str:
        """The host the step could not reach: named by the error, else by the step's URL, else `default`."""
        for line in self.lines:
            match = re.search(r"(?:resolve host|host):? '?([A-Za-z0-9.-]+\.[A-Za-z]{2,})", line)
            if match and _OFFLINE.search(line):
                return match.group(1)
        found = _HOST.search(self.title)
        return found.group(1) if found else default

    def url(self) -> str | None:
        """The URL the step downloads, as this machine's architecture makes it (`$(uname -m)` filled in)."""
        import platform

        found = _URL.search(self.title.replace("$(uname -m)", platform.machine() or "x86_64"))
        return found.group(0).rstrip(";") if found else None


def explain_build_failure(error: BuildError, spec: ImageSpec, base_ref: str, base: BaseInfo | None) -> BuildError:
    """`error` (a failed build of `spec` on `base_ref`) in the words of the workflow that asked for it;
    `error` itself when the failing step is not one this module knows."""
    step = Step.parse(error.message)
    origin = spec.origin
    who = f"workflow '{origin.workflow}'" if origin else f"the {spec.provider} image"
    has = f" (it has {base.python})" if base and base.python else " (it has no python3)" if base else ""
    title = step.title.lower()
    if "miniforge" in title and step.offline:
        url = step.url() or "the Miniforge installer"
        host = step.host("github.com")
        if origin and origin.conda:
            reason = f"{origin.conda}, so its image gets conda (Miniforge)"
        elif origin and origin.python:
            reason = f"{origin.python} is not in the base image {base_ref}{has}, so it is installed with conda"
        else:
            reason = f"its image needs conda, which the base image {base_ref} lacks"
        return _error(
            f"{who}: {reason}, and installing Miniforge needs {host} ({url}), which this build cannot reach",
            _bring_conda(base_ref, origin.python if origin else None, base))
    if ("conda" in title or "mamba" in title) and "create" in title and step.offline:
        host = step.host(CONDA_HOST)
        asked = origin.python if origin and origin.python else f"Python {_python_in(step.title) or ''}".strip()
        return _error(f"{who}: {asked} is installed with conda, and conda needs {host} (the conda-forge channel), "
                      "which this build cannot reach",
                      _bring_conda(base_ref, origin.python if origin else None, base, has_conda=True))
    if "uv python install" in title and step.offline:
        host = step.host(UV_PYTHON_HOST)
        asked = origin.python if origin and origin.python else "the Python asked for"
        return _error(f"{who}: {asked} is not in the base image {base_ref}{has}, and installing it with uv needs "
                      f"{host} (python-build-standalone), which this build cannot reach",
                      _bring_python(base_ref, origin.python if origin else None, base))
    if "apt-get" in title and step.offline:
        packages = title.rsplit("--no-install-recommends", 1)[-1].split(";")[0].split()
        return _error(f"{who}: the base image {base_ref} lacks {', '.join(packages) or 'system packages'}, and "
                      "installing them needs the Debian mirror, which this build cannot reach",
                      "use a base image that already has python3, curl (or conda): set `base_image` "
                      "(`dtrun config set base_image IMAGE` or DTRUN_BASE_IMAGE); `make base-image` builds one "
                      "offline")
    if "requirements.txt" in title:
        last = next((line for line in reversed(step.lines)
                     if "error" in line.lower() and "executor failed" not in line.lower()), None)
        cause = f": {last.strip()}" if last else ""
        net = " (the package index could not be reached)" if step.offline else ""
        return _error(f"{who}: installing its requirements.txt failed{net}{cause}",
                      "fix requirements.txt (or the `requirements` file the workflow names), then run again",
                      error)
    return error


def _error(message: str, hint: str, cause: BuildError | None = None) -> BuildError:
    """The explanation first, then the failing step's own log (what the builder printed), which the user
    still needs to see what exactly failed."""
    return BuildError(f"{message}\n{cause.message}" if cause else message, hint=hint)


def _python_in(title: str) -> str | None:
    found = re.search(r"python[=\s]+(\d+\.\d+)", title)
    return found.group(1) if found else None


def _bring_conda(base_ref: str, python: str | None, base: BaseInfo | None, *, has_conda: bool = False) -> str:
    drop = (f"drop {python} to use the base image's Python {base.python}, or " if python and base and base.python
            else "")
    what = "conda with that Python already installed" if has_conda else "conda (and that Python)"
    return (f"{drop}bring a base image with {what}: build one where the internet is reachable (e.g. FROM "
            "condaforge/miniforge3, then `conda install python=X`), copy it here with `docker save` / "
            "`docker load`, and set it as `base_image` (`dtrun config set base_image IMAGE` or DTRUN_BASE_IMAGE); "
            f"dtrun then uses its conda and downloads nothing (the base now is {base_ref})")


def _bring_python(base_ref: str, python: str | None, base: BaseInfo | None) -> str:
    drop = (f"drop {python} to use the base image's Python {base.python}, or " if python and base and base.python
            else "")
    return (f"{drop}bring a base image whose python3 is that version (or that has conda), load it with "
            "`docker load`, and set it as `base_image` (`dtrun config set base_image IMAGE` or "
            f"DTRUN_BASE_IMAGE) (the base now is {base_ref})")
