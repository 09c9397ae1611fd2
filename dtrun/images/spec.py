"""What a job needs from its image, independent of how it gets built."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, field

from dtrun.structs import struct

#: Provider tools a generated image can carry, each installed by its own step of `images/layers/tools.j2`.
#: `datatorch` is DataTorch's SDK from PyPI, which `python` flow actions import (`datatorch.get_inputs()`).
TOOLS = ("torch", "jupyterlab", "notebook", "code-server", "datatorch")


@struct(frozen=True)
class Origin:
    """Which workflow asked for this image, and which of its properties made which part of it: the
    words a failed build is explained in (`images.diagnose`). Never part of the image's identity."""

    workflow: str
    #: How the workflow asked for its Python, e.g. "`python: 3.7`"; None when it named none.
    python: str | None = None
    #: Why the image gets conda, e.g. "`python_install: conda`" or "its commands call `conda`".
    conda: str | None = None


@struct(frozen=True)
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
    #: Who asked for it and why (for error messages only: left out of `summary`, `key` and equality).
    origin: Origin | None = field(default=None, compare=False)

    def summary(self) -> dict[str, object]:
        """The spec as plain data (requirements as their hash), for labels and cache keys."""
        data = asdict(self)
        data.pop("origin", None)
        data["requirements"] = hashlib.sha256(self.requirements).hexdigest() if self.requirements else None
        return data

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.summary(), sort_keys=True).encode()).hexdigest()
