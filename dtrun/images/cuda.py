"""Which CUDA a GPU image gets, from which base, and whether the host's driver can run it.

The facts (base tags per CUDA minor, the minimum driver of each toolkit, the CUDA builds of each torch
release) live in `data/cuda.json`, so a new release is a data change, not a code change. Everything
here is pure: the Docker host's driver version is passed in by whoever read it.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from dtrun.errors import BuildError, ResourceError
from dtrun.structs import struct

_TORCH_PIN = re.compile(r"^\s*torch\s*(?:\[[^\]]*\])?\s*(===?|~=)\s*([0-9]+)\.([0-9]+)", re.IGNORECASE)
_CU_SUFFIX = re.compile(r"\+cu(\d+)(\d)\b")


@functools.lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(__file__).parent / "data" / "cuda.json").read_text())
    return data


def minor(version: str) -> str:
    """`12.4.1` -> `12.4`; a bare major (`12`) is taken as its newest known minor."""
    parts = str(version).strip().split(".")
    if not parts[0].isdigit() or (len(parts) > 1 and not parts[1].isdigit()):
        raise BuildError(f"'{version}' is not a CUDA version", hint="write it as MAJOR.MINOR, e.g. cuda: 12.4")
    if len(parts) == 1:
        known = sorted((m for m in table()["bases"] if m.split(".")[0] == parts[0]), key=_key)
        if not known:
            known_all = ", ".join(sorted(table()["bases"], key=_key))
            raise BuildError(f"no known CUDA {version}.x", hint=f"known: {known_all}")
        return str(known[-1])
    return f"{int(parts[0])}.{int(parts[1])}"


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))


def torch_pin(requirements: bytes | None) -> tuple[str, str | None] | None:
    """The torch minor pinned in a requirements file, and the CUDA of a `+cuXYZ` local version if any."""
    if not requirements:
        return None
    for line in requirements.decode(errors="replace").splitlines():
        match = _TORCH_PIN.match(line.split("#", 1)[0])
        if match:
            cu = _CU_SUFFIX.search(line)
            return f"{match.group(2)}.{match.group(3)}", (f"{cu.group(1)}.{cu.group(2)}" if cu else None)
    return None


@struct(frozen=True)
class CudaChoice:
    version: str
    source: str  # "workflow", "torch X.Y in the requirements", "default"


def resolve_cuda(cuda: str | None, requirements: bytes | None, driver_version: str | None = None) -> CudaChoice:
    """The workflow's `cuda`, else the CUDA that the pinned torch ships with, else the default.

    The default follows the newest torch; on a host whose NVIDIA driver (when known) is too old for it,
    the default becomes the newest CUDA with a known base that this driver runs, instead of a refusal
    for something the user never asked for. An explicit `cuda` or torch pin is kept and checked.
    """
    if cuda:
        return CudaChoice(minor(cuda), "workflow")
    pin = torch_pin(requirements)
    if pin:
        torch_minor, local = pin
        if local:
            return CudaChoice(minor(local), f"torch {torch_minor} (+cu) in the requirements")
        builds = table()["torch"].get(torch_minor)
        if builds:
            return CudaChoice(builds[0], f"torch {torch_minor} in the requirements")
    default = str(table()["default_cuda"])
    if driver_version and not _driver_runs(driver_version, default):
        runnable = [c for c in table()["bases"] if _driver_runs(driver_version, c)]
        if runnable:
            best = max(runnable, key=_key)
            return CudaChoice(best, f"the newest CUDA that driver {driver_version} runs")
    return CudaChoice(default, "default")


def _driver_runs(driver_version: str, cuda: str) -> bool:
    needed = table()["min_driver"].get(minor(cuda))
    return needed is None or _key(driver_version) >= _key(needed)


def base_for(cuda: str, flavour: str = "runtime") -> str:
    """The nvidia/cuda tag for a CUDA minor and flavour (`runtime` or `cudnn-devel`)."""
    bases = table()["bases"]
    entry = bases.get(minor(cuda))
    if entry is None:
        raise BuildError(f"no base image is known for CUDA {cuda}",
                         hint=f"use one of {', '.join(sorted(bases, key=_key))}, or bring a base with "
                         "`dtrun config set gpu_base_image IMAGE`")
    return str(entry[flavour])


def torch_index(cuda: str | None) -> str:
    """The PyTorch wheel index for a CUDA minor (`cu124`), or the CPU one."""
    return "cpu" if cuda is None else "cu" + minor(cuda).replace(".", "")


def torch_for(cuda: str | None, requirements: bytes | None) -> str:
    """The torch requirement of a torchrun image: the pinned minor, else the newest one built for `cuda`."""
    pin = torch_pin(requirements)
    if pin:
        return f"torch=={pin[0]}.*"
    releases = sorted(table()["torch"], key=_key)
    if cuda is not None:
        releases = [r for r in releases if minor(cuda) in table()["torch"][r]]
        if not releases:
            raise BuildError(f"no torch release in dtrun's table is built for CUDA {cuda}",
                             hint="pin torch in the requirements, or pick another `cuda`")
    return f"torch=={releases[-1]}.*"


def check_cuda_supported(cuda: str, driver_version: str | None) -> None:
    """Refuse, before any build, a CUDA newer than the host's NVIDIA driver runs.

    `driver_version` is what `nvidia-smi` reports on the Docker host (e.g. `535.104.05`); None means
    unknown (no GPU on the host, or it could not be read), and then there is nothing to check.
    """
    if not driver_version:
        return
    needed = table()["min_driver"].get(minor(cuda))
    if needed is None or _key(driver_version) >= _key(needed):
        return
    supported = [c for c, d in table()["min_driver"].items() if _key(driver_version) >= _key(d)]
    best = max(supported, key=_key) if supported else None
    raise ResourceError(
        f"CUDA {cuda} needs NVIDIA driver {needed} or newer, but the Docker host has driver {driver_version}",
        hint=(f"set `cuda: {best}` in the workflow (the newest this driver runs)" if best else
              "this driver is too old for any CUDA dtrun knows") + ", or upgrade the host's driver",
    )
