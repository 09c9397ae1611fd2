"""Rendering an `ImageSpec` into a Dockerfile plus its build context, and hashing the result."""

from __future__ import annotations

import hashlib
import json

from dtrun.errors import BuildError
from dtrun.images import cuda as cuda_table
from dtrun.images.probe import BaseInfo
from dtrun.images.spec import TOOLS, ImageSpec
from dtrun.images.templates import TEMPLATE_VERSION, render
from dtrun.structs import struct

#: The Python that conda and uv install when the workflow names none.
DEFAULT_PYTHON = "3.11"


@struct(frozen=True)
class BuildPlan:
    """Everything one build needs; `tag` is derived from all of it."""

    dockerfile: str
    context: dict[str, bytes]
    tag: str
    labels: dict[str, str]
    build_args: dict[str, str]


def resolve_python_install(spec: ImageSpec, base: BaseInfo) -> str:
    """Which way Python gets into the image.

    `auto` adapts to the base (design principle 7): the base's conda if it has one; its python3 (in a
    venv) if that is the requested version or no version was asked for; otherwise Miniforge, which is
    what "the default installs Miniforge" means: whenever the base has no suitable Python, as in the
    nvidia/cuda bases of GPU jobs, conda and mamba arrive with the requested Python.
    """
    mode = spec.python_install
    if mode not in ("auto", "system", "conda", "uv"):
        raise BuildError(f"unknown python_install '{mode}'", hint="use auto, system, conda or uv")
    if mode != "auto":
        return mode
    if base.conda:
        return "conda"
    if base.python and base.venv and (spec.python is None or spec.python == base.python):
        return "system"
    return "conda"


def plan_build(spec: ImageSpec, base_ref: str, base: BaseInfo, *, buildkit: bool, rebuild: str = "",
               platform: str = "linux/amd64", cuda: str | None = None) -> BuildPlan:
    """The Dockerfile, context, tag and labels of `spec` on the probed base `base_ref`.

    `rebuild` (any new value) forces every step to run again through the `DTRUN_REBUILD` build argument,
    not `--no-cache`, which would also empty the cache mounts; the tag stays the same.
    `cuda` is the CUDA minor of a GPU image (chosen by the caller with the base); it selects the
    torch wheel index and is recorded in the labels.
    """
    install = resolve_python_install(spec, base)
    if install == "system" and spec.python and base.python and spec.python != base.python:
        raise BuildError(
            f"python_install: system uses the base image's python {base.python}, "
            f"but the workflow asks for python {spec.python}",
            hint="drop `python` from the workflow, pick a base image with that Python, "
            "or use python_install: conda (or uv) to install it",
        )
    # a dev environment's `version:` pins its tool as `NAME==VERSION` (only then is the Dockerfile different)
    tool_versions = dict(t.split("==", 1) for t in spec.tools if "==" in t)
    tools = [t.split("==", 1)[0] for t in spec.tools]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        raise BuildError(f"unknown image tools: {', '.join(unknown)}", hint=f"known: {', '.join(TOOLS)}")
    needs_apt = ((install in ("system", "uv") and not (base.python and base.venv))
                 or (install == "conda" and not base.conda and not base.curl)
                 or ("code-server" in tools and not base.curl))
    if needs_apt and not base.apt:
        missing = "python3" if install == "system" else "curl (to fetch Miniforge)" if install == "conda" \
            else "python3 (to install uv)"
        raise BuildError(
            f"the base image {base_ref} has no {missing} and no apt-get to install it",
            hint="use a base image with python3 (or conda), e.g. `make base-image` builds one offline",
        )
    # No version asked for: the base's python3 where the mode can use it, else the default.
    python = spec.python or (base.python if install in ("system", "uv") and base.python else DEFAULT_PYTHON)
    context: dict[str, bytes] = {}
    if spec.requirements is not None:
        context["requirements.txt"] = spec.requirements
    spec_labels = {
        "dev.dtrun.image": "1",
        "dev.dtrun.provider": spec.provider,
        "dev.dtrun.python": python or "",
        "dev.dtrun.python-install": install,
        "dev.dtrun.gpu": "1" if spec.gpu else "0",
        "dev.dtrun.cuda": cuda or "",
        "dev.dtrun.base": base_ref,
        "dev.dtrun.base-id": base.image_id,
        "dev.dtrun.tools": ",".join(spec.tools),
        "dev.dtrun.spec": json.dumps(spec.summary(), sort_keys=True, separators=(",", ":")),
    }
    data = cuda_table.table()
    variables = dict(
        base=base_ref,
        buildkit=buildkit,
        apt_packages=list(spec.apt_packages),
        python_install=install,
        python=python,
        base_has_python=bool(base.python),
        base_has_venv=base.venv,
        base_has_curl=base.curl,
        conda_from_base=install == "conda" and base.conda,
        uv_python_from_base=install == "uv" and base.python is not None and base.venv and python == base.python,
        miniforge_version=data["miniforge"],
        pip_packages=list(spec.pip_packages),
        tools=tools,
        tool_versions=tool_versions,
        torch_requirement=cuda_table.torch_for(cuda, spec.requirements) if "torch" in tools else "",
        torch_index=cuda_table.torch_index(cuda),
        # code-server, its Node and npm (issue 14); `version:` of a `code` workflow picks code-server's
        code_server={**data["code_server"], **({"version": tool_versions["code-server"]}
                                               if "code-server" in tool_versions else {})},
        installer="uv" if install == "uv" else "pip",
        requirements=spec.requirements is not None,
        env=sorted(spec.extra_env),
        labels=spec_labels,
    )
    dockerfile = render("Dockerfile.j2", **variables)
    digest = hashlib.sha256()
    # `rebuild` is left out on purpose: a forced rebuild replaces the image under the same tag.
    digest.update(json.dumps({"template": TEMPLATE_VERSION, "base_id": base.image_id, "platform": platform,
                              "buildkit": buildkit}, sort_keys=True).encode())
    digest.update(dockerfile.encode())
    for name in sorted(context):
        digest.update(name.encode() + b"\0" + hashlib.sha256(context[name]).digest())
    tag = f"dtrun/{spec.provider}:{digest.hexdigest()[:20]}"
    build_args = {"DTRUN_REBUILD": rebuild} if rebuild else {}
    return BuildPlan(dockerfile=dockerfile, context=context, tag=tag, labels=spec_labels, build_args=build_args)
