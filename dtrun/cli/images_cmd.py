"""`dtrun images`: build a workflow's image ahead of a run, list dtrun's images, prune unused ones."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from dtrun.cli.ages import ago, parse_age
from dtrun.cli.app import app

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
) -> None:
    """Build the images a workflow needs, showing each build step as it runs."""
    from dtrun.cli.context import Context
    from dtrun.plan import build_plan
    from dtrun.ui import say

    context = Context.here(host=host)
    spec = context.spec()
    spec.get(workflow)
    plan = build_plan(spec, workflow, python_install=context.settings.python_install or "auto")
    backend = context.backend()
    endpoint = backend.host if "://" in backend.host else None
    force = str(time.time_ns()) if rebuild else ""
    done: dict[str, str] = {}
    for job in plan.jobs:
        key = job.image.key()
        if key in done:
            say(f"{job.workflow}: {done[key]} (same image as above)")
            continue
        image, built = _build_one(backend, context.settings, job.workflow, job.image, endpoint, force)
        done[key] = image
        say(f"{job.workflow}: {image} ({'built' if built else 'up to date, nothing to build'})")


def _build_one(backend: Any, settings: Any, name: str, spec: Any, endpoint: str | None,
               force: str) -> tuple[str, bool]:
    """One image, with a live spinner naming the running build step on a terminal, plain lines elsewhere."""
    from rich.markup import escape

    from dtrun.images.manager import ensure_image
    from dtrun.ui import console, interactive, say

    def line(text: str) -> None:
        console().print(f"[dim]  | {escape(text)}[/dim]")

    # The host's NVIDIA driver, where it has GPUs (None: nothing to check).
    driver = backend.driver_version() if spec.gpu else None
    if not interactive():
        return ensure_image(backend.client, spec, settings, docker_host=endpoint, output=line, rebuild=force,
                            driver_version=driver, say=say)
    with console().status(f"{name}: looking up the image") as status:

        def step(title: str) -> None:
            status.update(f"{name}: {escape(title)}")

        return ensure_image(backend.client, spec, settings, docker_host=endpoint, output=line, rebuild=force,
                            driver_version=driver, step=step, say=say)


def _dtrun_images(client: Any) -> list[dict[str, Any]]:
    return [img for img in client.api.images(filters={"label": LABEL})
            if any(tag.startswith("dtrun/") for tag in img.get("RepoTags") or [])]


@images_app.command("list")
def list_(host: Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint.")] = None) -> None:
    """List the images dtrun generated on the Docker host, newest first."""
    from dtrun.backends.connection import connect, docker_host
    from dtrun.config import load_settings
    from dtrun.images.manager import last_used

    client = connect(docker_host(host or load_settings().host))
    used = last_used()
    now = time.time()
    rows = []
    for img in sorted(_dtrun_images(client), key=lambda i: -int(i.get("Created", 0))):
        labels = img.get("Labels") or {}
        for tag in (t for t in img.get("RepoTags") or [] if t.startswith("dtrun/")):
            last = used.get(tag)
            rows.append((tag, labels.get("dev.dtrun.python-install", ""), labels.get("dev.dtrun.python", ""),
                         labels.get("dev.dtrun.cuda") or "-", f"{int(img.get('Size', 0)) / 1e6:.0f} MB",
                         ago(now - int(img.get("Created", 0))), ago(now - last) if last else "-"))
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
    import docker.errors

    from dtrun.backends.connection import connect, docker_host
    from dtrun.config import load_settings
    from dtrun.images.manager import last_used

    limit = parse_age(older_than)
    client = connect(docker_host(host or load_settings().host))
    used = last_used()
    now = time.time()
    removed = kept = 0
    for img in _dtrun_images(client):
        tags = [t for t in img.get("RepoTags") or [] if t.startswith("dtrun/")]
        last = max([used.get(t, 0.0) for t in tags] + [float(img.get("Created", 0))])
        if now - last < limit:
            continue
        for tag in tags:
            if dry_run:
                typer.echo(f"would remove {tag} (last used {ago(now - last)})")
                removed += 1
                continue
            try:
                client.api.remove_image(tag, noprune=False)
                typer.echo(f"removed {tag} (last used {ago(now - last)})")
                removed += 1
            except docker.errors.APIError as exc:
                typer.echo(f"kept {tag}: {exc.explanation or exc}")
                kept += 1
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"{verb} {removed} image{'s' if removed != 1 else ''}" + (f", kept {kept} in use" if kept else ""))
