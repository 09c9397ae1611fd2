"""`dtrun images`: build a workflow's image ahead of a run, list dtrun's images, prune unused ones."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, cast

import typer

from dtrun.cli.ages import ago, parse_age
from dtrun.cli.app import app

if TYPE_CHECKING:
    from dtrun.backends.base import Backend, ImageInfo
    from dtrun.backends.docker import DockerBackend
    from dtrun.config import Settings
    from dtrun.images.host import ImageHost
    from dtrun.images.spec import ImageSpec
    from dtrun.plan import Job

images_app = typer.Typer(help="Build, list and prune the images dtrun generates.", no_args_is_help=True)
app.add_typer(images_app, name="images")

LABEL = "dev.dtrun.image=1"


@images_app.command("build")
def build(
    workflow: Annotated[str, typer.Argument(help="The workflow whose image (and its dependencies' images) to build.")],
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Build again even if the image exists "
                                          "(keeps the build caches).")] = False,
    host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint, e.g. ssh://me@gpu-box.")]
    = None,
    dockerfile: Annotated[bool, typer.Option("--dockerfile", help="Print the Dockerfile of each image instead "
                                             "of building it (the base image is looked up and probed).")] = False,
) -> None:
    """Build the images a workflow needs, showing each build step as it runs."""
    from dtrun.api import Session
    from dtrun.ui import say

    context = Session(host=host)
    context.spec().get(workflow)
    plan = context.plan(workflow)
    backend = context.backend
    if dockerfile:
        if rebuild:
            from dtrun.errors import DtrunError

            raise DtrunError("--dockerfile prints what would be built; --rebuild builds", hint="pass one of them")
        _show(backend, context.settings, plan.jobs)
        return
    force = str(time.time_ns()) if rebuild else ""
    done: dict[str, str] = {}
    for job in plan.jobs:
        key = job.image.key()
        if key in done:
            say(f"{job.workflow}: {done[key]} (same image as above)")
            continue
        image, built = _build_one(backend, context.settings, job.workflow, job.image, force)
        done[key] = image
        say(f"{job.workflow}: {image} ({'built' if built else 'up to date, nothing to build'})")


def _show(backend: Backend, settings: Settings, jobs: list[Job]) -> None:
    """Each distinct image's Dockerfile on stdout (as `docker build -f -` reads it), nothing built."""
    from dtrun.images.show import generated_dockerfile

    # an agent backend (Slurm, Kubernetes) builds with the local Docker daemon, its `builder`
    host = cast("ImageHost", getattr(backend, "builder", backend))
    shown: dict[str, str] = {}
    for job in jobs:
        key = job.image.key()
        if key in shown:
            typer.echo(f"# {job.workflow}: the same image as {shown[key]}")
            continue
        shown[key] = job.workflow
        driver = backend.driver_version() if job.image.gpu else None
        typer.echo(generated_dockerfile(host, job.image, settings, driver_version=driver).text(job.workflow))


def _build_one(backend: Backend, settings: Settings, name: str, spec: ImageSpec, force: str) -> tuple[str, bool]:
    """One image, with a live spinner naming the running build step on a terminal, plain lines elsewhere."""
    from rich.markup import escape

    from dtrun.ui import console, interactive, say

    def line(text: str) -> None:
        console().print(f"[dim]  | {escape(text)}[/dim]")

    if not interactive():
        return backend.ensure_image(spec, settings, output=line, rebuild=force, say=say)
    with console().status(f"{name}: looking up the image") as status:

        def step(title: str) -> None:
            status.update(f"{name}: {escape(title)}")

        return backend.ensure_image(spec, settings, output=line, rebuild=force, step=step, say=say)


def _dtrun_images(backend: DockerBackend) -> list[ImageInfo]:
    return [img for img in backend.list_images(label=LABEL) if any(tag.startswith("dtrun/") for tag in img.tags)]


@images_app.command("list")
def list_(host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint.")] = None) -> None:
    """List the images dtrun generated on the Docker host, newest first."""
    from dtrun.api import Session
    from dtrun.images.manager import last_used

    client = Session(host=host).docker()
    used = last_used()
    now = time.time()
    rows = []
    for img in sorted(_dtrun_images(client), key=lambda i: -i.created):
        labels = img.labels
        for tag in (t for t in img.tags if t.startswith("dtrun/")):
            last = used.get(tag)
            rows.append((tag, labels.get("dev.dtrun.python-install", ""), labels.get("dev.dtrun.python", ""),
                         labels.get("dev.dtrun.cuda") or "-", f"{img.size / 1e6:.0f} MB",
                         ago(now - int(img.created)), ago(now - last) if last else "-"))
    if not rows:
        typer.echo("no dtrun images on this Docker host")
        return
    header = ("IMAGE", "PYTHON-INSTALL", "PYTHON", "CUDA", "SIZE", "CREATED", "LAST USED HERE")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@images_app.command("prune")
def prune(
    older_than: Annotated[str, typer.Option("--older-than", help="Remove images not used for this long "
                                            "(7d, 12h, 30m, 0s).")] = "7d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be removed.")] = False,
    host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint.")] = None,
) -> None:
    """Remove dtrun's images that no run used recently; never any other image.

    An image's last use is when a run (or `images build`) on this machine last asked for it, else when
    it was built. Images that a container still uses are kept.
    """
    from dtrun.api import Session
    from dtrun.images.manager import last_used

    limit = parse_age(older_than)
    client = Session(host=host).docker()
    used = last_used()
    now = time.time()
    removed = kept = 0
    for img in _dtrun_images(client):
        tags = [t for t in img.tags if t.startswith("dtrun/")]
        last = max([used.get(t, 0.0) for t in tags] + [img.created])
        if now - last < limit:
            continue
        for tag in tags:
            if dry_run:
                typer.echo(f"would remove {tag} (last used {ago(now - last)})")
                removed += 1
                continue
            refused = client.remove_image(tag)
            if refused is None:
                typer.echo(f"removed {tag} (last used {ago(now - last)})")
                removed += 1
            else:
                typer.echo(f"kept {tag}: {refused}")
                kept += 1
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"{verb} {removed} image{'s' if removed != 1 else ''}" + (f", kept {kept} in use" if kept else ""))
