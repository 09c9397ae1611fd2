"""Driving a code volume on a Docker daemon, through the API only (works the same on a remote one).

`CodeVolumeOps` is the Docker backend's side of `dtrun.code.protocol.CodeVolumes` (the engine finds it
through `dtrun.backends.base.code_volumes`); the functions below it work on an Engine API client (engineapi/).

- The anchor: a container that is created, never started, and mounts the code volume at /code. The
  daemon extracts `put_archive` streams into a stopped container's volumes, so landing a delta costs
  one API call and no container run. Its image is an empty one imported from a 1 KiB tar (nothing to
  pull, nothing for `images prune` to trip over).
- A put: nothing at all when this client saw the tree complete before (`coderecord`). Else one
  `put_archive` of a layer holding only what changed, stacked on the layers of the base tree (once the
  stack is `max_layers` deep, on its bottom full layer; a full layer where the daemon cannot whiteout).
  The base is the last tree this client put here (`coderecord.last_put`); a client with none reads
  the new tree's marker first (present: nothing to send), then HEAD.json, the volume's latest tree.
- A job's view: an overlay `local` volume (lower: the tree's layers; upper, work: two fresh volumes);
  creating three volumes is three API calls, whatever the size of the tree or the depth of its stack.
- Pruning, and the holds that keep a run's tree from it: `codeprune.py` (policy: `dtrun.code.retention`).
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import threading
from pathlib import Path
from typing import Any

from dtrun.backends.docker.codeprune import views_of as views_of
from dtrun.code.delta import Delta
from dtrun.code.manifest import Manifest
from dtrun.code.volume import (
    CODE_MOUNT,
    HEAD,
    VIEW_MOUNT,
    WHITEOUT_PROBE,
    Head,
    delta_since,
    gone_paths,
    join_layers,
    land_chunks,
    layer_dir,
    max_layers,
    new_layer_name,
    overlay_options,
    probe_chunks,
    split_layers,
    stacking,
    tree_marker,
    whiteouts,
)
from dtrun.errors import DtrunError

ANCHOR_IMAGE = "dtrun-local/anchor:1"
LABEL = "dev.dtrun"


def ensure_anchor_image(client: Any) -> str:
    from dtrun.backends.docker.engineapi import errors as api_errors

    try:
        client.images.get(ANCHOR_IMAGE)
    except api_errors.ImageNotFound:
        repository, tag = ANCHOR_IMAGE.rsplit(":", 1)
        client.api.import_image_from_data(b"\0" * 1024, repository=repository, tag=tag,
                                          changes=[f"LABEL {LABEL}=1"])
    return ANCHOR_IMAGE


ANCHOR_LABEL = f"{LABEL}.anchor"


def anchor_labels(volume: str, labels: dict[str, str]) -> dict[str, str]:
    """The anchor's labels: the volume's, moved under `dev.dtrun.anchor.` (`dev.dtrun.store` ->
    `dev.dtrun.anchor.store`), so that no query for a run's, a job's or a store's containers (`dtrun ps`,
    reconcile, stop) ever finds this never-started container."""
    moved = {f"{ANCHOR_LABEL}.{key[len(LABEL) + 1:]}": value for key, value in labels.items()
             if key.startswith(LABEL + ".")}
    return {ANCHOR_LABEL: volume, **moved}


def ensure_code_volume(client: Any, volume: str, labels: dict[str, str]) -> Any:
    """The code volume and its anchor container (created once per daemon and repository)."""
    from dtrun.backends.docker.engineapi import errors as api_errors
    from dtrun.backends.docker.engineapi.create import Mount

    try:
        client.volumes.get(volume)
    except api_errors.NotFound:
        client.volumes.create(name=volume, labels=labels)
    name = f"{volume}-anchor"
    try:
        return client.containers.get(name)
    except api_errors.NotFound:
        pass
    image = ensure_anchor_image(client)
    try:
        return client.containers.create(image, command=["/anchor"], name=name, labels=anchor_labels(volume, labels),
                                        network_disabled=True,
                                        mounts=[Mount(target=CODE_MOUNT, source=volume, type="volume")])
    except api_errors.APIError as exc:
        if getattr(exc, "status_code", None) == 409:  # another client made it just now
            return client.containers.get(name)
        raise DtrunError(f"cannot prepare the code volume {volume}: {exc.explanation or exc}") from None


def anchor_mountpoint(anchor: Any) -> str | None:
    """Where the code volume lies on the daemon's host, from the anchor's inspect (no extra call)."""
    for mount in (getattr(anchor, "attrs", None) or {}).get("Mounts") or []:
        if mount.get("Destination") == CODE_MOUNT and mount.get("Source"):
            return str(mount["Source"])
    return None


def _read_member(anchor: Any, path: str) -> bytes | None:
    from dtrun.backends.docker.engineapi import errors as api_errors

    try:
        stream, _ = anchor.get_archive(f"{CODE_MOUNT}/{path}")
    except api_errors.NotFound:
        return None
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member is not None else None
        return handle.read() if handle is not None else None


def tree_layers(anchor: Any, tree_id: str) -> list[str]:
    """The layers of a complete tree (top first), from its marker; none while the tree is not complete."""
    data = _read_member(anchor, tree_marker(tree_id))
    return split_layers(data.decode(errors="replace")) if data is not None else []


def tree_present(anchor: Any, tree_id: str) -> bool:
    return bool(tree_layers(anchor, tree_id))


def read_head(anchor: Any) -> Head | None:
    """The volume's latest tree (HEAD.json), the base of the next delta; None if empty or unreadable."""
    data = _read_member(anchor, HEAD)
    return Head.from_json(data.decode(errors="replace")) if data is not None else None


def makes_whiteouts(anchor: Any) -> bool:
    """Whether the daemon's extraction makes a character device 0:0 (it skips devices in a user
    namespace): one whiteout put and read back, asked once per volume (HEAD.json keeps the answer)."""
    from dtrun.backends.docker.engineapi import errors as api_errors

    if not anchor.put_archive(CODE_MOUNT, b"".join(probe_chunks())):
        return False
    try:
        stream, _ = anchor.get_archive(f"{CODE_MOUNT}/{WHITEOUT_PROBE}")
    except api_errors.NotFound:  # skipped without a word
        return False
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        return member is not None and member.ischr() and member.devmajor == 0 and member.devminor == 0


def put_code(anchor: Any, root: Path, manifest: Manifest, mountpoint: str | None = None) -> tuple[str, Delta | None]:
    """Make the tree of `manifest` complete in the volume. Returns its layers (`join_layers`, top
    first) and the delta that was sent (only objects the volume lacks travel), None if the tree was
    already there. `mountpoint` (where the volume lies on the daemon's host) bounds the stack's depth."""
    from dtrun.backends.docker import coderecord

    known = coderecord.recorded(anchor.id, manifest.digest)
    if known is not None:
        return known, None
    head = coderecord.last_put(anchor.id)  # this client's base: no HEAD.json or marker read
    if head is None:
        layers = tree_layers(anchor, manifest.digest)
        if layers:
            coderecord.remember(anchor.id, manifest.digest, join_layers(layers))
            return join_layers(layers), None
        head = read_head(anchor)
    head, delta = delta_since(head, manifest)
    delta, below = stacking(head, lambda: coderecord.last_base(anchor.id), manifest, delta, max_layers(mountpoint))
    knows = head.whiteouts if head is not None else None
    if below is not None and whiteouts(manifest, gone_paths(delta)):
        knows = makes_whiteouts(anchor) if knows is None else knows
        below = below if knows else None  # without whiteouts the deletions cannot be layered: a full layer
    layer = new_layer_name()
    if not anchor.put_archive(CODE_MOUNT, land_chunks(root, manifest, delta, layer, below, knows)):
        raise DtrunError(f"copying the code into the volume of {anchor.name} failed")
    stack = [layer, *(below or [])]
    coderecord.remember(anchor.id, manifest.digest, join_layers(stack))
    coderecord.remember_put(anchor.id, Head.of(manifest, stack, knows), full=below is None)
    return join_layers(stack), delta


def code_view(client: Any, code_volume: str, layers: str, name: str, labels: dict[str, str],
              mountpoint: str | None = None) -> str:
    """A job's private copy-on-write view of a tree (its layers, `join_layers`), as a volume named
    `name` to mount at /workspace. Its writes land in `name`-upper; remove all three with `remove_view`."""
    chain = split_layers(layers)
    if not chain:
        raise DtrunError(f"no layers of a code tree in {layers!r}")
    mountpoint = mountpoint or client.volumes.get(code_volume).attrs["Mountpoint"]
    # the upper and work volumes at once, each on its own connection: the job waits for one round trip
    work: list[str] = []
    second = threading.Thread(target=lambda: work.append(
        client.volumes.create(name=f"{name}-work", labels=labels).attrs["Mountpoint"]), name="dtrun-view", daemon=True)
    second.start()
    try:
        upper = client.volumes.create(name=f"{name}-upper", labels=labels).attrs["Mountpoint"]
    finally:
        second.join()
    if not work:  # its create failed (the error went to the thread): ask again here, where it raises
        work.append(client.volumes.create(name=f"{name}-work", labels=labels).attrs["Mountpoint"])
    options = overlay_options([f"{mountpoint}/{layer_dir(layer)}" for layer in chain], upper, work[0])
    client.volumes.create(name=name, driver="local", driver_opts=options, labels=labels)
    return name


def remove_view(client: Any, name: str, *, companions_only: bool = False) -> None:
    """Remove a view and its upper and work volumes (only those two when the view itself is gone).

    The volumes are independent once no container mounts the view, so they are removed at once, one
    call each on its own connection: a job's end waits for one round trip, not three."""
    from dtrun.backends.docker.engineapi import errors as api_errors

    def remove(volume: str) -> None:
        with contextlib.suppress(api_errors.APIError):
            client.api.remove_volume(volume, force=True)  # one call: no lookup first

    volumes = ([] if companions_only else [name]) + [f"{name}-upper", f"{name}-work"]
    others = [threading.Thread(target=remove, args=(v,), name=f"dtrun-rm-{v}", daemon=True) for v in volumes[1:]]
    for thread in others:
        thread.start()
    remove(volumes[0])
    for thread in others:
        thread.join()


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


def copy_view(client: Any, image: str, code_volume: str, layers: str, target: str, labels: dict[str, str]) -> None:
    """The fallback view where overlay volumes cannot be mounted: the tree's layers replayed into `target`."""
    from dtrun.backends.docker.engineapi.create import Mount
    from dtrun.code.scripts import COPY_VIEW_SCRIPT

    _helper(client, image, COPY_VIEW_SCRIPT, list(reversed(split_layers(layers))),
            [Mount(target=CODE_MOUNT, source=code_volume, type="volume", read_only=True),
             Mount(target=VIEW_MOUNT, source=target, type="volume")], labels)


class CodeVolumeOps:
    """The Docker backend's code volumes (`dtrun.code.protocol.CodeVolumes`), on its client.

    The helper image (copy fallback, prune, overlay probe) is the first of the backend's probe images
    present on the daemon: any image with a POSIX shell does.
    """

    client: Any
    probe_images: list[str]
    _overlay: bool | None = None

    def _daemon_id(self) -> str:
        info = getattr(self, "info", None)  # DockerBackend's, asked once per process
        return str((info if isinstance(info, dict) else self.client.info()).get("ID") or "")

    def _helper_image(self) -> str:
        """Any image with a POSIX shell on the daemon, when the caller named none (the job's image)."""
        from dtrun.backends.docker.hostinfo import _first_present
        from dtrun.errors import BackendError

        try:
            return _first_present(self.client, self.probe_images)
        except RuntimeError:
            raise BackendError(f"no image with a shell for the code volume's helper: none of "
                               f"{', '.join(self.probe_images)} is on {getattr(self, 'host', 'the host')}") from None

    def put_code(self, volume: str, root: Path, manifest: Manifest, labels: dict[str, str],
                 hold_labels: dict[str, str] | None = None) -> Any:
        """`put_code` above, with the tree held for the run (`codeprune.hold`, made at the same time, no
        added round trip) and made again on a new anchor when a concurrent prune removed the old one."""
        from dtrun.backends.docker import codeprune, coderecord
        from dtrun.backends.docker.engineapi import errors as api_errors
        from dtrun.code.protocol import CodeRef
        from dtrun.code.volume import LABEL_CODE

        own = {**{key: value for key, value in labels.items() if key != LABEL_CODE}, **(hold_labels or {})}
        held: list[str] = []
        holding = threading.Thread(target=lambda: held.append(codeprune.hold(self.client, volume, manifest.digest,
                                                                               own)), name="dtrun-hold", daemon=True)
        holding.start()
        try:
            for attempt in (1, 2):
                anchor = ensure_code_volume(self.client, volume, {LABEL_CODE: "1", **labels})
                mountpoint = anchor_mountpoint(anchor)
                try:
                    layers, sent = put_code(anchor, root, manifest, mountpoint)
                    break
                except api_errors.NotFound:  # a prune removed the anchor under this put: again, on a new one
                    if attempt == 2:
                        raise
        finally:
            holding.join()
        if not held:  # its create failed (the error went to the thread): asked again here, where it raises
            held.append(codeprune.hold(self.client, volume, manifest.digest, own))
        self._mountpoints = {**getattr(self, "_mountpoints", {}), volume: mountpoint}
        self._anchors = {**getattr(self, "_anchors", {}), volume: (anchor.id, {LABEL_CODE: "1", **labels})}
        landed = coderecord.count_landed(anchor.id) if sent is not None else coderecord.landed(anchor.id)
        return CodeRef(volume, manifest.digest, layers, sent, hold=held[0], landed=landed)

    def code_view(self, code: Any, name: str, labels: dict[str, str], image: str | None = None) -> str:
        def helper() -> str:
            return image or self._helper_image()

        if self._overlay is None:
            from dtrun.backends.docker.codeprobe import overlay_works

            self._overlay = overlay_works(self.client, helper, code, labels, self._daemon_id())
        if self._overlay:
            return code_view(self.client, code.volume, code.build, name, labels,
                             getattr(self, "_mountpoints", {}).get(code.volume))
        with contextlib.suppress(Exception):
            self.client.volumes.get(name).remove(force=True)
        self.client.volumes.create(name=name, labels=labels)
        copy_view(self.client, helper(), code.volume, code.build, name, labels)
        return str(name)

    def remove_code_view(self, name: str) -> None:
        remove_view(self.client, name)

    def prune_code(self, volume: str, keep: list[str], newest: int = 0, wait: bool = True) -> None:
        """`codeprune.prune`; then, if this client put into `volume` in this process, its record of the
        tree in `keep` it put last moves to the new anchor (`coderecord.carry`): its next put reads nothing."""
        from dtrun.backends.docker import codeprune, coderecord

        codeprune.prune(self.client, self._helper_image(), volume, keep, {LABEL: "1"}, newest=newest, wait=wait)
        old = getattr(self, "_anchors", {}).get(volume)
        head = coderecord.last_put(old[0]) if old is not None else None
        if old is None or head is None or join_layers(head.layers) not in keep:
            return
        anchor = ensure_code_volume(self.client, volume, old[1])
        if coderecord.carry(old[0], anchor.id, keep):
            self._anchors[volume] = (anchor.id, old[1])

    def release_code(self, code: Any) -> None:
        """The run is over: its hold on the tree goes (`codeprune.hold`)."""
        from dtrun.backends.docker import codeprune

        if code.hold:
            codeprune.release(self.client, code.hold)

    def release_holds(self, labels: dict[str, str]) -> None:
        from dtrun.backends.docker.codeprune import release_holds

        release_holds(self.client, labels)

    def remove_code(self, volume: str) -> str | None:
        """Remove a repository's code volume and its anchor: None when removed, else why it was kept
        (a job's view still uses one of its trees, or a run in flight holds one). The next run sends the
        whole tree again."""
        from dtrun.backends.docker.codeprune import holds_of
        from dtrun.backends.docker.engineapi import errors as api_errors
        from dtrun.errors import NotFound

        try:
            in_use = views_of(self.client, volume)
        except api_errors.NotFound:
            raise NotFound(f"no volume {volume}") from None
        if in_use:
            return f"a job's code view uses it ({len(in_use)} view{'s' if len(in_use) != 1 else ''})"
        held = holds_of(self.client, volume)
        if held:
            return f"a run in flight holds one of its trees ({len(held)} tree{'s' if len(held) != 1 else ''})"
        with contextlib.suppress(api_errors.NotFound):
            self.client.api.remove_container(f"{volume}-anchor", force=True)
        try:
            self.client.api.remove_volume(volume)
        except api_errors.APIError as exc:
            return str(exc.explanation or exc)
        return None


class DockerCodeVolumes(CodeVolumeOps):
    """`CodeVolumeOps` on a bare client (tests, benchmarks): `helper_image` any image with a POSIX shell;
    `overlay` set instead of probed (False forces the copy fallback)."""

    def __init__(self, client: Any, helper_image: str, *, overlay: bool = True) -> None:
        self.client = client
        self.probe_images = [helper_image]
        self._overlay = overlay
