"""Driving a code volume on a Docker daemon, through the API only (works the same on a remote one).

Written against docker-py's client so the one-engine refactor (issue 11) can move it as is into
`dtrun/backends/docker/` behind the Backend methods `put_code`, `code_view` and `prune_code`; until
then nothing in the engine calls it. `docker` is imported lazily, as everywhere outside the backend.

- The anchor: a container that is created, never started, and mounts the code volume at /code. The
  daemon extracts `put_archive` streams into a stopped container's volumes, so landing a delta costs
  one API call and no container run. Its image is an empty one imported from a 1 KiB tar (nothing to
  pull, nothing for `images prune` to trip over).
- A job's view: an overlay `local` volume (lower: the tree; upper, work: two fresh volumes); creating
  three volumes is three API calls, whatever the size of the tree.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import uuid
from pathlib import Path
from typing import Any

from dtrun.code.delta import Delta, compute_delta
from dtrun.code.manifest import Manifest
from dtrun.code.volume import (
    CODE_MOUNT,
    COPY_VIEW_SCRIPT,
    HEAD,
    PRUNE_SCRIPT,
    VIEW_MOUNT,
    build_name,
    land_chunks,
    overlay_options,
    tree_dir,
    tree_marker,
)
from dtrun.errors import DtrunError

ANCHOR_IMAGE = "dtrun-local/anchor:1"
LABEL = "dev.dtrun"


def ensure_anchor_image(client: Any) -> str:
    import docker.errors

    try:
        client.images.get(ANCHOR_IMAGE)
    except docker.errors.ImageNotFound:
        repository, tag = ANCHOR_IMAGE.rsplit(":", 1)
        client.api.import_image_from_data(b"\0" * 1024, repository=repository, tag=tag,
                                          changes=[f"LABEL {LABEL}=1"])
    return ANCHOR_IMAGE


def ensure_code_volume(client: Any, volume: str, labels: dict[str, str]) -> Any:
    """The code volume and its anchor container (created once per daemon and repository)."""
    import docker.errors
    from docker.types import Mount

    try:
        client.volumes.get(volume)
    except docker.errors.NotFound:
        client.volumes.create(name=volume, labels=labels)
    name = f"{volume}-anchor"
    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        pass
    image = ensure_anchor_image(client)
    try:
        return client.containers.create(image, command=["/anchor"], name=name, labels=labels,
                                        network_disabled=True,
                                        mounts=[Mount(target=CODE_MOUNT, source=volume, type="volume")])
    except docker.errors.APIError as exc:
        if getattr(exc, "status_code", None) == 409:  # another client made it just now
            return client.containers.get(name)
        raise DtrunError(f"cannot prepare the code volume {volume}: {exc.explanation or exc}") from None


def _read_member(anchor: Any, path: str) -> bytes | None:
    import docker.errors

    try:
        stream, _ = anchor.get_archive(f"{CODE_MOUNT}/{path}")
    except docker.errors.NotFound:
        return None
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member is not None else None
        return handle.read() if handle is not None else None


def tree_build(anchor: Any, tree_id: str) -> str | None:
    """The build folder of a complete tree, from its marker; None while the tree is not complete."""
    data = _read_member(anchor, tree_marker(tree_id))
    return data.decode().strip() or None if data is not None else None


def tree_present(anchor: Any, tree_id: str) -> bool:
    return tree_build(anchor, tree_id) is not None


def held_manifest(anchor: Any) -> Manifest | None:
    """What the volume's latest tree holds (HEAD.json), the base of the next delta; None if empty."""
    data = _read_member(anchor, HEAD)
    if data is None:
        return None
    with contextlib.suppress(ValueError, KeyError, TypeError, IndexError):
        return Manifest.from_json(data.decode())
    return None


def put_code(anchor: Any, root: Path, manifest: Manifest) -> tuple[str, Delta | None]:
    """Make the tree of `manifest` complete in the volume. Returns its build folder, and the delta
    that was sent (only objects the volume lacks travel), None if the tree was already there."""
    build = tree_build(anchor, manifest.digest)
    if build is not None:
        return build, None
    delta = compute_delta(held_manifest(anchor), manifest)
    txn = uuid.uuid4().hex
    if not anchor.put_archive(CODE_MOUNT, land_chunks(root, manifest, delta, txn)):
        raise DtrunError(f"copying the code into the volume of {anchor.name} failed")
    return build_name(manifest.digest, txn), delta


def code_view(client: Any, code_volume: str, build: str, name: str, labels: dict[str, str]) -> str:
    """A job's private copy-on-write view of a tree's build folder, as a volume named `name` to mount
    at /workspace. Its writes land in `name`-upper; remove all three with `remove_view`."""
    mountpoint = client.volumes.get(code_volume).attrs["Mountpoint"]
    upper = client.volumes.create(name=f"{name}-upper", labels=labels).attrs["Mountpoint"]
    work = client.volumes.create(name=f"{name}-work", labels=labels).attrs["Mountpoint"]
    options = overlay_options(f"{mountpoint}/{tree_dir(build)}", upper, work)
    client.volumes.create(name=name, driver="local", driver_opts=options, labels=labels)
    return name


def remove_view(client: Any, name: str) -> None:
    import docker.errors

    for volume in (name, f"{name}-upper", f"{name}-work"):
        with contextlib.suppress(docker.errors.APIError):
            client.volumes.get(volume).remove(force=True)


def _helper(client: Any, image: str, script: str, args: list[str], mounts: list[Any], labels: dict[str, str]) -> str:
    container = client.containers.create(image, entrypoint=["sh", "-c", script, "sh"], command=args,
                                         network_disabled=True, labels=labels, mounts=mounts)
    try:
        container.start()
        code = container.wait().get("StatusCode", 1)
        logs = container.logs().decode(errors="replace")
        if code != 0:
            raise DtrunError(f"the code volume helper failed ({code}): {logs.strip()[-500:]}")
        return str(logs)
    finally:
        container.remove(force=True)


def copy_view(client: Any, image: str, code_volume: str, build: str, target: str, labels: dict[str, str]) -> None:
    """The fallback view where overlay volumes cannot be mounted: a copy of the tree into `target`."""
    from docker.types import Mount

    _helper(client, image, COPY_VIEW_SCRIPT, [build],
            [Mount(target=CODE_MOUNT, source=code_volume, type="volume", read_only=True),
             Mount(target=VIEW_MOUNT, source=target, type="volume")], labels)


def prune_code(client: Any, image: str, code_volume: str, keep: list[str], labels: dict[str, str]) -> None:
    from docker.types import Mount

    _helper(client, image, PRUNE_SCRIPT, keep, [Mount(target=CODE_MOUNT, source=code_volume, type="volume")],
            labels)


class DockerCodeVolumes:
    """`CodeVolumes` on a Docker daemon (`dtrun.code.protocol`): what the Docker backend delegates to.

    `helper_image` runs the copy fallback and the prune (any image with a POSIX shell: the job's own).
    `overlay=False` forces the copy fallback (a daemon where overlay volumes do not mount).
    """

    def __init__(self, client: Any, helper_image: str, *, overlay: bool = True) -> None:
        self.client = client
        self.helper_image = helper_image
        self.overlay = overlay

    def put_code(self, volume: str, root: Path, manifest: Manifest, labels: dict[str, str]) -> Any:
        from dtrun.code.protocol import CodeRef

        anchor = ensure_code_volume(self.client, volume, labels)
        build, sent = put_code(anchor, root, manifest)
        return CodeRef(volume, manifest.digest, build, sent)

    def code_view(self, code: Any, name: str, labels: dict[str, str]) -> str:
        if self.overlay:
            return code_view(self.client, code.volume, code.build, name, labels)
        self.client.volumes.create(name=name, labels=labels)
        copy_view(self.client, self.helper_image, code.volume, code.build, name, labels)
        return str(name)

    def remove_code_view(self, name: str) -> None:
        remove_view(self.client, name)

    def prune_code(self, volume: str, keep: list[str]) -> None:
        prune_code(self.client, self.helper_image, volume, keep, {LABEL: "1"})
