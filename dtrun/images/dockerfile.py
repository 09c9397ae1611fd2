"""Rendering an `ImageSpec` into a Dockerfile plus its build context, and hashing the result."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from dtrun.errors import BuildError
from dtrun.images.probe import BaseInfo
from dtrun.images.spec import ImageSpec
from dtrun.images.templates import TEMPLATE_VERSION, render


@dataclass(frozen=True)
class BuildPlan:
    """Everything one build needs; `tag` is derived from all of it."""

    dockerfile: str
    context: dict[str, bytes]
    tag: str
    labels: dict[str, str]
    build_args: dict[str, str]


def resolve_python_install(spec: ImageSpec, base: BaseInfo) -> str:
    """Which way Python gets into the image: prefer what the base already has (design principle 7)."""
    mode = spec.python_install
    if mode != "auto":
        return mode
    if base.python and (spec.python is None or spec.python == base.python) and base.venv:
        return "system"
    if base.python is None and spec.python is None and base.apt:
        return "system"
    wanted = spec.python or "3"
    raise BuildError(
        f"the base image has {'python ' + base.python if base.python else 'no python3'} "
        f"but the workflow asks for python {wanted}",
        hint="use a base image that has this Python (DTRUN_BASE_IMAGE or `dtrun config set base_image`), "
        "or change the workflow's `python`",
    )


def plan_build(spec: ImageSpec, base_ref: str, base: BaseInfo, *, buildkit: bool, rebuild: str = "",
               platform: str = "linux/amd64") -> BuildPlan:
    install = resolve_python_install(spec, base)
    if install == "system" and spec.python and base.python and spec.python != base.python:
        raise BuildError(
            f"python_install: system uses the base image's python {base.python}, "
            f"but the workflow asks for python {spec.python}",
            hint="pick a base image with that Python, or drop `python` from the workflow",
        )
    context: dict[str, bytes] = {}
    if spec.requirements is not None:
        context["requirements.txt"] = spec.requirements
    spec_labels = {
        "dev.dtrun.image": "1",
        "dev.dtrun.provider": spec.provider,
        "dev.dtrun.python": spec.python or (base.python or ""),
        "dev.dtrun.python-install": install,
        "dev.dtrun.gpu": "1" if spec.gpu else "0",
        "dev.dtrun.base": base_ref,
    }
    variables = dict(
        base=base_ref,
        buildkit=buildkit,
        rebuild=rebuild,
        apt_packages=list(spec.apt_packages),
        python_install=install,
        python=spec.python,
        base_has_python=bool(base.python),
        pip_packages=list(spec.pip_packages),
        requirements=spec.requirements is not None,
        labels=spec_labels,
    )
    dockerfile = render("Dockerfile.j2", **variables)
    digest = hashlib.sha256()
    digest.update(json.dumps({"template": TEMPLATE_VERSION, "base_id": base.image_id, "platform": platform,
                              "rebuild": rebuild, "buildkit": buildkit}, sort_keys=True).encode())
    digest.update(dockerfile.encode())
    for name in sorted(context):
        digest.update(name.encode() + b"\0" + hashlib.sha256(context[name]).digest())
    tag = f"dtrun/{spec.provider}:{digest.hexdigest()[:20]}"
    build_args = {"DTRUN_REBUILD": rebuild} if rebuild else {}
    return BuildPlan(dockerfile=dockerfile, context=context, tag=tag, labels=spec_labels, build_args=build_args)
