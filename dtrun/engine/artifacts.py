"""Moving artifacts between containers and the store: export at the end of a job, mount into the next."""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass

from dtrun.archive import ChunkReader, repack
from dtrun.backends.docker import DockerBackend, VolumeMount
from dtrun.store import ArtifactRecord, Store


def artifact_key(path: str) -> str:
    """A stable object name for a declared artifact path (`checkpoint`, `/out/models` ...)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", path.strip("/")) or "root"
    return f"{slug}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


def export_artifact(backend: DockerBackend, container: object, store: Store, job_id: str, path: str,
                    container_path: str) -> ArtifactRecord | None:
    """Save one output folder of a finished container; None when the job never created it."""
    stream = backend.get_archive(container, container_path)
    if stream is None:
        return None
    key = artifact_key(path)
    with tempfile.TemporaryFile() as tmp:
        manifest = repack(ChunkReader(stream), tmp)  # type: ignore[arg-type]
        tmp.flush()
        tmp.seek(0)
        with store.open(store.job_path(job_id, "artifacts", f"{key}.tar.tmp"), "wb") as out:
            while chunk := tmp.read(1 << 22):
                out.write(chunk)
    tar_path = store.job_path(job_id, "artifacts", f"{key}.tar")
    store.fs.mv(store.job_path(job_id, "artifacts", f"{key}.tar.tmp"), tar_path)
    record = ArtifactRecord(path=path, container_path=container_path, key=key, digest=manifest.digest,
                            files=manifest.count, size=manifest.size)
    # The manifest is the completion marker: it is written last, only once the archive is in place.
    store.write_json(store.job_path(job_id, "artifacts", f"{key}.json"),
                     {"artifact": record.model_dump(), "files": manifest.files})
    return record


@dataclass(frozen=True)
class InputArtifact:
    """An artifact of an upstream job that a job receives, read-only, where it was produced."""

    repo: str
    job_id: str
    record: ArtifactRecord


def mount_inputs(backend: DockerBackend, store: Store, inputs: list[InputArtifact], image: str,
                 labels: dict[str, str]) -> list[VolumeMount]:
    """Materialise each input once per daemon (volumes keyed by content) and return the mounts."""
    mounts: list[VolumeMount] = []
    for item in inputs:
        volume = f"dtrun-art-{item.record.digest[:32]}"
        tar_path = store.job_path(item.job_id, "artifacts", f"{item.record.key}.tar", repo=item.repo)
        backend.materialize(volume, image, {**labels, "dev.dtrun.artifact": item.record.digest},
                            lambda p=tar_path: store.open(p, "rb"))  # type: ignore[misc]
        mounts.append(VolumeMount(volume=volume, target=item.record.container_path, read_only=True))
    return mounts
