"""Pruning a code volume and the holds that protect a run's tree from it, through the API only (a remote
daemon gets the same). The policy (what is kept, when a prune runs, why): `dtrun.code.retention`.

What must never be pruned is found from the daemon itself, never from a shared file system: the layers
job views use (their overlay `lowerdir`, `views_of`), the trees runs in flight hold (labelled volumes,
`holds_of`), HEAD's tree and the most recently landed trees (read by the helper from the volume).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

from dtrun.code.retention import HOLD_LABEL, HOLD_PREFIX, HOLD_STALE_S, HOLD_TREE
from dtrun.code.volume import CODE_MOUNT, LAYERS

LABEL = "dev.dtrun"
#: On a prune's helper container: the code volume it prunes.
PRUNER_LABEL = f"{LABEL}.code.pruner"


def views_of(client: Any, code_volume: str) -> list[str]:
    """The layers of `code_volume` that existing job views use (their overlay `lowerdir`), each once."""
    mountpoint = client.volumes.get(code_volume).attrs["Mountpoint"]
    prefix = f"{mountpoint}/{LAYERS}/"
    layers: list[str] = []
    for volume in client.api.volumes(filters={"label": [LABEL]}).get("Volumes") or []:
        options = (volume.get("Options") or {}).get("o", "")
        for part in options.split(","):
            if part.startswith("lowerdir="):
                for lower in part[len("lowerdir="):].split(":"):
                    if lower.startswith(prefix) and lower[len(prefix):] not in layers:
                        layers.append(lower[len(prefix):])
    return layers


def hold(client: Any, code_volume: str, tree_id: str, labels: dict[str, str]) -> str:
    """Hold `tree_id` of `code_volume` for a run in flight: an empty volume whose labels name it. One call."""
    name = f"{HOLD_PREFIX}{uuid.uuid4().hex[:16]}"
    client.volumes.create(name=name, labels={**labels, HOLD_LABEL: code_volume, HOLD_TREE: tree_id})
    return name


def release(client: Any, name: str) -> None:
    from dtrun.backends.docker.engineapi import errors as api_errors

    with contextlib.suppress(api_errors.APIError):
        client.api.remove_volume(name, force=True)


def release_holds(client: Any, labels: dict[str, str]) -> None:
    """Release the holds whose labels include `labels` (a dead run's, settled by reconcile); one that
    cannot be listed now is left to the stale-hold rule."""
    from dtrun.backends.docker.engineapi import errors as api_errors

    selector = [HOLD_LABEL, *(f"{key}={value}" for key, value in labels.items())]
    with contextlib.suppress(api_errors.DockerException):
        for volume in client.api.volumes(filters={"label": selector}).get("Volumes") or []:
            release(client, str(volume.get("Name") or ""))


def _created(text: str) -> float:
    """A volume's CreatedAt (RFC 3339) as epoch seconds; now when unreadable (a hold is kept, not lost)."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def holds_of(client: Any, code_volume: str) -> list[str]:
    """The trees runs in flight hold in `code_volume`; holds older than `HOLD_STALE_S` are removed."""
    trees: list[str] = []
    now = time.time()
    for volume in client.api.volumes(filters={"label": [f"{HOLD_LABEL}={code_volume}"]}).get("Volumes") or []:
        tree = (volume.get("Labels") or {}).get(HOLD_TREE) or ""
        if now - _created(str(volume.get("CreatedAt") or "")) > HOLD_STALE_S:
            release(client, str(volume.get("Name") or ""))
        elif tree and tree not in trees:
            trees.append(tree)
    return trees


def prune_tokens(keep: list[str]) -> list[str]:
    """`keep` (tree ids, layer names or `join_layers` strings) as the script's arguments, each once."""
    return sorted({part for item in keep for part in item.split(":") if part})


def remove_anchor(client: Any, code_volume: str) -> None:
    """Every client's records of this volume's trees lapse with the anchor's id (`coderecord`); a put in
    flight on it fails with NotFound and is made again on a new anchor (`CodeVolumeOps.put_code`)."""
    from dtrun.backends.docker.engineapi import errors as api_errors

    with contextlib.suppress(api_errors.NotFound):
        client.api.remove_container(f"{code_volume}-anchor", force=True)


def prune(client: Any, image: str, code_volume: str, keep: list[str], labels: dict[str, str], *,
          newest: int = 0, wait: bool = True) -> None:
    """Drop what `scripts.PRUNE_SCRIPT` drops. Kept: `keep` (tree ids, layer names or `join_layers`
    strings), the layers job views use, the trees runs in flight hold, HEAD's tree and the `newest` most
    recently landed trees.

    The anchor is removed first (the next put makes a new one): clients' records of the trees in this
    volume are keyed by the anchor's id (`coderecord`), and some of those trees are about to go. Views
    and holds are read after that, so a put that lands later lands through a new anchor (and its layer,
    younger than an hour, is kept). `wait=False`: the helper is started with AutoRemove and left to
    finish on the daemon; the client's cost is a few calls (the anchor removed, views and holds listed,
    the helper created and started)."""
    from dtrun.backends.docker.codevolumes import _helper
    from dtrun.backends.docker.engineapi.create import Mount, container_config
    from dtrun.code.scripts import PRUNE_SCRIPT

    remove_anchor(client, code_volume)
    args = [str(newest), *prune_tokens([*keep, *views_of(client, code_volume), *holds_of(client, code_volume)])]
    mounts = [Mount(target=CODE_MOUNT, source=code_volume, type="volume")]
    labels = {**labels, PRUNER_LABEL: code_volume}
    if wait:
        _helper(client, image, PRUNE_SCRIPT, args, mounts, labels)
        return
    body = container_config(image, args, entrypoint=["sh", "-c", PRUNE_SCRIPT, "sh"], network_disabled=True,
                            labels=labels, mounts=[dict(m) for m in mounts])
    body["HostConfig"]["AutoRemove"] = True
    created = client.api.post("/containers/create", {"name": f"{code_volume}-prune-{uuid.uuid4().hex[:8]}"},
                              json_body=body, image=True)
    client.api.call("POST", f"/containers/{created['Id']}/start").read()
