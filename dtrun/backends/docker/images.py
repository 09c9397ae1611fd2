"""Images on the Docker host: looked up, pulled, probed, built (legacy builder), tagged, pushed, removed.

The image manager (`dtrun.images.manager`) decides what to build; it asks the backend for these
operations in dtrun's types (`ImageInfo`), so it never sees the Engine API's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dtrun.backends.base import Credentials, ImageInfo, Output
from dtrun.backends.docker.errors import explanation, ignored, translated
from dtrun.errors import BackendError, InvalidReference

if TYPE_CHECKING:
    from dtrun.config import Settings
    from dtrun.images.spec import ImageSpec


def _info(attrs: dict[str, Any]) -> ImageInfo:
    created = attrs.get("Created", 0)
    if isinstance(created, str):
        from dtrun.backends.docker.volumes import parse_created

        created = parse_created(created)
    config = attrs.get("Config") or {}
    env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    return ImageInfo(id=str(attrs.get("Id", "")), tags=list(attrs.get("RepoTags") or []),
                     labels=dict(attrs.get("Labels") or config.get("Labels") or {}),
                     size=int(attrs.get("Size", 0) or 0), created=float(created or 0),
                     user=str(config.get("User") or ""), home=env.get("HOME") or None)


class ImageOps:
    client: Any
    cli_host: str | None
    host: str

    def driver_version(self) -> str | None:
        raise NotImplementedError  # provided by DockerBackend

    def ensure_image(self, spec: ImageSpec, settings: Settings, *, output: Output, rebuild: str = "",
                     step: Output | None = None, say: Output | None = None) -> tuple[str, bool]:
        """The image a job needs, built here if missing (see dtrun.images.manager)."""
        tag, _, built = self.resolve_image(spec, settings, output=output, rebuild=rebuild, step=step, say=say)
        return tag, built

    def resolve_image(self, spec: ImageSpec, settings: Settings, *, output: Output, rebuild: str = "",
                      step: Output | None = None, say: Output | None = None) -> tuple[str, ImageInfo, bool]:
        """`ensure_image` with the image itself (id, user, HOME), recorded for `recorded_image`."""
        from dtrun.images.manager import resolve_image

        return resolve_image(self, spec, settings, docker_host=self.cli_host, output=output, rebuild=rebuild,
                             driver_version=self.driver_version() if spec.gpu else None, step=step, say=say,
                             where=self.host)

    def recorded_image(self, spec: ImageSpec, settings: Settings) -> tuple[str, ImageInfo] | None:
        """What `resolve_image` answered last time, from the client's record: no daemon, no API client."""
        from dtrun.images.manager import recorded_image

        return recorded_image(spec, settings, self.host)

    def build_image(self, *, dockerfile: str, context: dict[str, bytes], tag: str, labels: dict[str, str],
                    output: Output) -> None:
        """Build a given Dockerfile and context (an action's image) with the best builder there is."""
        from dtrun.images.builder import build, pick_builder

        builder = pick_builder()
        output(f"building {tag} with {builder.describe()}")
        build(builder, self, dockerfile=dockerfile, context=context, tag=tag, labels=labels, build_args={},
              secrets={}, docker_host=self.cli_host, output=output)

    def image(self, ref: str) -> ImageInfo | None:
        """The image `ref` names on the host, None if none; `InvalidReference` if the daemon cannot parse
        `ref` (a 400: no image can ever have that name, so it is not "missing" and must not be pulled)."""
        from dtrun.backends.docker.engineapi import errors as api_errors

        try:
            return _info(self.client.api.inspect_image(ref))
        except api_errors.ImageNotFound:
            return None
        except api_errors.APIError as exc:
            if exc.status_code == 400:
                raise InvalidReference(ref, explanation(exc).rsplit(": ", 1)[-1]) from None
            raise

    def pull_image(self, ref: str, auth: Credentials | None = None) -> ImageInfo:
        """Pull `ref`, as `auth`'s user when given (a private registry); the password goes to the daemon only."""
        config = {"username": auth.username, "password": auth.password} if auth else None
        with translated(f"pulling {ref} failed"):
            self.client.images.pull(ref, auth_config=config)
        found = self.image(ref)
        if found is None:
            raise BackendError(f"pulling {ref} gave no image")
        return found

    def list_images(self, *, references: list[str] | None = None, label: str | None = None) -> list[ImageInfo]:
        filters: dict[str, Any] = {}
        if references:
            filters["reference"] = references
        if label:
            filters["label"] = label
        return [_info(img) for img in self.client.api.images(filters=filters)]

    def remove_image(self, ref: str) -> str | None:
        """Remove an image; None if done, else why the daemon kept it (a container uses it)."""
        from dtrun.backends.docker.engineapi import errors as api_errors

        try:
            self.client.api.remove_image(ref, noprune=False)
        except api_errors.APIError as exc:
            return explanation(exc)
        return None

    def discard_image(self, ref: str) -> None:
        with ignored():
            self.client.images.remove(ref, noprune=False)

    def run_probe(self, image: str, argv: list[str], labels: dict[str, str]) -> bytes:
        """Run `argv` in a throwaway, network-less container of `image`; its output."""
        with translated(f"probing the image {image} failed"):
            out = self.client.containers.run(image, argv, remove=True, entrypoint=[], labels=labels,
                                             network_disabled=True)
        return bytes(out)

    def legacy_build(self, folder: Path, tag: str, labels: dict[str, str],
                     build_args: dict[str, str]) -> Iterator[dict[str, Any]]:
        """The legacy builder's progress messages for a build of `folder` (the Engine API's /build)."""
        from dtrun.backends.docker.engineapi import errors as api_errors

        try:
            yield from self.client.api.build(path=str(folder), tag=tag, labels=labels, buildargs=build_args,
                                             decode=True, rm=True, forcerm=True)
        except api_errors.APIError as exc:
            from dtrun.errors import BuildError

            raise BuildError(f"building {tag} failed: {explanation(exc)}") from None

    def tag_image(self, image: str, ref: str) -> tuple[str, str]:
        from dtrun.backends.docker.engineapi.registry import split_reference

        repository, tag = split_reference(ref)
        with translated(f"tagging {image} as {ref} failed"):
            self.client.images.get(image).tag(repository, tag or "latest")
        return repository, tag or "latest"

    def push_image(self, repository: str, tag: str, auth: dict[str, str] | None) -> None:
        hint = ("check the registry address and your credentials (`docker login REGISTRY`, "
                "or --username with the password on stdin)")
        with translated(f"pushing {repository}:{tag} failed", hint=hint):
            for chunk in self.client.images.push(repository, tag=tag, auth_config=auth, stream=True, decode=True):
                if "error" in chunk:
                    detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                    raise BackendError(f"pushing {repository}:{tag} failed: {detail}", hint=hint)
