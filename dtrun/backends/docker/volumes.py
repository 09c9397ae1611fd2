"""Docker volumes: job workspaces, dep artifacts materialised once per daemon, the CA bundle, the caches.

Inputs are staged through the API into named volumes, never bind mounts of client paths (the daemon may
be another machine, design principle 1).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from dtrun.backends.base import CA_DIR, CA_ENV, CA_PATH, LABEL, VolumeInfo, VolumeMount
from dtrun.backends.docker.errors import explanation, ignored, is_conflict
from dtrun.errors import BackendError, DtrunError


class VolumeOps:
    client: Any

    def create_volume(self, name: str, labels: dict[str, str]) -> str:
        from dtrun.backends.docker.engineapi import errors as api_errors

        try:
            self.client.volumes.get(name)
        except api_errors.NotFound:
            self.client.volumes.create(name=name, labels=labels)
        return name

    def remove_volume(self, name: str) -> None:
        """Remove a volume; a job's code view (an overlay volume, codevolumes.py) goes with its upper and
        work volumes, so every place that removes a workspace removes a view whole.

        This is on the way out of every job, so it asks nothing first: the volume is deleted, then the
        two companions a view has, both at once (a workspace that is not a view has none: two quick
        404s). The companions go only once the view is gone: a view still in use (its container could
        not be removed) keeps the upper and work folders its overlay writes to."""
        from dtrun.backends.docker.engineapi import errors as api_errors

        if not name:
            return
        try:
            self.client.api.remove_volume(name, force=True)
        except api_errors.NotFound:
            pass  # gone already; companions a half-done removal left still go
        except api_errors.APIError:
            return  # in use, or refused: kept whole
        from dtrun.backends.docker.codevolumes import remove_view

        remove_view(self.client, name, companions_only=True)

    def list_volumes(self, labels: list[str]) -> list[VolumeInfo]:
        """The volumes carrying every one of `labels` (`key` or `key=value`)."""
        from datetime import datetime

        found = []
        for volume in self.client.api.volumes(filters={"label": labels}).get("Volumes") or []:
            created = datetime.fromisoformat(volume["CreatedAt"].replace("Z", "+00:00")).timestamp()
            found.append(VolumeInfo(volume["Name"], volume.get("Labels") or {}, created))
        return found

    def delete_volume(self, name: str) -> str | None:
        """Remove a volume: None when removed, else why the daemon kept it (e.g. in use); NotFound if gone."""
        from dtrun.backends.docker.engineapi import errors as api_errors
        from dtrun.errors import NotFound

        try:
            self.client.api.remove_volume(name)
        except api_errors.NotFound:
            raise NotFound(f"no volume {name}") from None
        except api_errors.APIError as exc:
            return explanation(exc)
        return None

    def ca_bundle_mount(self, ca: Path, image: str) -> tuple[VolumeMount, dict[str, str]]:
        """The host's CA bundle for a job, and the environment pointing clients at it.

        Materialised once per daemon into a volume keyed by its content and mounted read-only, like
        a dep's artifacts: no copy per job, and the job cannot alter what it trusts. The volume is
        shared infrastructure, so it carries no run's or store's label.
        """
        data = ca.read_bytes()
        volume = f"dtrun-ca-{hashlib.sha256(data).hexdigest()[:24]}"

        def tar() -> IO[bytes]:
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as archive:
                info = tarfile.TarInfo("ca.crt")
                info.size, info.mode = len(data), 0o444
                archive.addfile(info, io.BytesIO(data))
            buffer.seek(0)
            return buffer

        self.materialize_once(volume, image, {LABEL: "1", f"{LABEL}.ca": "1"}, tar)
        return VolumeMount(volume, CA_DIR, read_only=True), dict.fromkeys(CA_ENV, CA_PATH)

    def materialize_once(self, volume: str, image: str, labels: dict[str, str],
                         open_tar: Callable[[], IO[bytes]], *, stale_after: float = 600.0) -> bool:
        """Fill `volume` once with a stored artifact (dep artifacts are copied once per daemon), safely
        when several clients fill the same volume at the same time.

        The fill container's name is the lock: creating it fails with a conflict while another
        client fills the volume, and this one then waits for it to finish instead of destroying its
        work. A fill container older than `stale_after` seconds belongs to a client that died; its
        half-filled volume is replaced. True if this call copied the data, False if it was there.
        """
        from dtrun.backends.docker.engineapi import errors as api_errors
        from dtrun.backends.docker.engineapi.create import Mount

        filler = f"{volume}-fill"
        while True:
            try:
                self.client.volumes.get(volume)
                exists = True
            except api_errors.NotFound:
                exists = False
            try:
                holder = self.client.containers.get(filler)
            except api_errors.NotFound:
                holder = None
            if holder is None and exists:
                return False
            if holder is not None:
                created = holder.attrs.get("Created", "")
                from dtrun.backends.docker.clock import age as daemon_age

                known = daemon_age(self.client, created) if created else None  # the daemon's clock (issue 15)
                age = stale_after + 1 if known is None else known
                if age <= stale_after:
                    time.sleep(0.2)
                    continue
                with ignored():
                    holder.remove(force=True)
                with ignored():
                    self.client.volumes.get(volume).remove(force=True)
                continue
            try:
                container = self.client.containers.create(
                    image, command=["true"], entrypoint=[], name=filler, labels=labels, network_disabled=True,
                    mounts=[Mount(target="/data", source=volume, type="volume", labels=labels)])
            except api_errors.APIError as exc:
                if is_conflict(exc):  # another client took the lock just now
                    continue
                raise BackendError(f"cannot prepare the dependency volume {volume}: {explanation(exc)}") from None
            try:
                with open_tar() as data:
                    if not container.put_archive("/data", data):
                        raise DtrunError(f"copying a dependency into the volume {volume} failed")
            except BaseException:
                with ignored():
                    container.remove(force=True)
                with ignored():
                    self.client.volumes.get(volume).remove(force=True)
                raise
            container.remove(force=True)
            return True


def parse_created(text: str) -> float:
    """Docker's `Created` (RFC 3339 with nanoseconds) -> epoch seconds."""
    from dtrun.backends.docker.clock import parse_time

    return parse_time(text)
