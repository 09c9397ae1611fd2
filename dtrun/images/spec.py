"""What a job needs from its image, independent of how it gets built."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

#: Provider tools a generated image can carry, each installed by its own step of `images/layers/tools.j2`.
#: `datatorch` is DataTorch's SDK from PyPI, which `python` flow actions import (`datatorch.get_inputs()`).
TOOLS = ("torch", "jupyterlab", "notebook", "code-server", "datatorch")


@dataclass(frozen=True)
class ImageSpec:
    """The inputs of one generated image.

    `user_image` short-circuits generation: the docker provider runs the user's image as it is.
    `tools` names what a provider preinstalls (see `TOOLS`), between Python and the user's requirements,
    so that a change of requirements does not reinstall torch or JupyterLab.
    """

    provider: str
    python: str | None = None
    python_install: str = "auto"
    gpu: bool = False
    cuda: str | None = None
    base: str | None = None
    requirements: bytes | None = None
    apt_packages: tuple[str, ...] = ()
    pip_packages: tuple[str, ...] = ()
    user_image: str | None = None
    extra_env: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    tools: tuple[str, ...] = ()

    def summary(self) -> dict[str, object]:
        """The spec as plain data (requirements as their hash), for labels and cache keys."""
        data = asdict(self)
        data["requirements"] = hashlib.sha256(self.requirements).hexdigest() if self.requirements else None
        return data

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.summary(), sort_keys=True).encode()).hexdigest()
