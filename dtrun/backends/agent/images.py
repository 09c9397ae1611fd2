"""The agent in the job's image: one cached layer on top of the image dtrun builds as today.

The layer copies the agent's modules of this client's `dtrun` and `fsspec` (pure Python) under
/opt/dtrun-agent, so `python -m dtrun.agent` works on nodes that have nothing pre-installed and the
agent is exactly the client's version (the manifest format is versioned, but equal is simplest). A
store on S3 also needs `s3fs` in the image: it is added to the image's pip packages, installed by the
normal build (with the index and CA bundle the build already uses). The layer's tag is the hash of
what it adds and of the image below, so it is built once per image and dtrun version.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from dtrun.backends.base import LABEL, Output

if TYPE_CHECKING:
    from dtrun.backends.base import Backend
    from dtrun.images.spec import ImageSpec

TARGET = "/opt/dtrun-agent"
DOCKERFILE = f"""\
ARG BASE
FROM $BASE
COPY site/ {TARGET}/
ENV PYTHONPATH={TARGET}
RUN command -v python >/dev/null 2>&1 || ln -s "$(command -v python3)" /usr/local/bin/python
"""


def agent_spec(spec: ImageSpec, store_url: str) -> ImageSpec:
    """The job's image spec plus what the agent needs from PyPI for this store (`s3fs` for S3)."""
    if store_url.startswith(("s3://", "s3a://")) and spec.user_image is None and "s3fs" not in spec.pip_packages:
        return replace(spec, pip_packages=(*spec.pip_packages, "s3fs"))
    return spec


#: The modules of dtrun the agent imports (tests/unit/backends/agent checks this stays true): only they
#: are shipped, so the layer, and with it the jobs' cache keys, change only when the agent does.
AGENT_MODULES = ("__init__.py", "agent", "errors.py", "masking.py", "structs.py", "store/__init__.py",
                 "store/archive.py", "store/tarstream.py", "store/store.py", "store/records.py", "store/failures.py",
                 "store/guarded.py", "store/localfiles.py")


def agent_files() -> dict[str, bytes]:
    """`site/dtrun/...` (the agent's modules) and `site/fsspec/...`: the Python sources the agent runs on."""
    import fsspec

    import dtrun

    files: dict[str, bytes] = {}
    root = Path(dtrun.__file__).parent
    for name in AGENT_MODULES:
        for path in sorted([root / name] if name.endswith(".py") else (root / name).rglob("*.py")):
            if "__pycache__" not in path.parts:
                files[f"site/dtrun/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    package = Path(fsspec.__file__).parent
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".json", ".txt"):
            files[f"site/fsspec/{path.relative_to(package).as_posix()}"] = path.read_bytes()
    return files


def with_agent(builder: Backend, image: str, output: Output) -> tuple[str, bool]:
    """`image` with the agent layer: (its tag, whether it was built now)."""
    files = agent_files()
    base = builder.image(image)
    digest = hashlib.sha256((base.id if base else image).encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name])
    tag = f"dtrun/agent:{digest.hexdigest()[:16]}"
    if builder.image(tag) is not None:
        return tag, False
    dockerfile = DOCKERFILE.replace("ARG BASE\nFROM $BASE", f"FROM {image}")
    builder.build_image(dockerfile=dockerfile, context=files, tag=tag,
                        labels={LABEL: "1", f"{LABEL}.agent-layer": "1"}, output=output)
    return tag, True
