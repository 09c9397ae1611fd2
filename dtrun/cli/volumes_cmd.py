"""`dtrun volumes`: the caches dtrun keeps on a Docker host, and removing the old ones.

Dep artifacts and CA bundles are materialised once per daemon into volumes keyed by their content
(`dtrun-art-*`, `dtrun-ca-*`), so later jobs mount them without copying; a workflow's `cache:` paths
live in one volume each (`dtrun-cache-*`, engine/kept.py); each repository's code, by content, in one
(`dtrun-code-*`, docs/code-volumes.md). Nothing else removes them: on a shared
GPU box they would fill the disk. Any of them can go: the next job that needs an artifact or the CA
materialises it again from the store, and a removed `cache:` path starts empty again (as on the
first run), a removed code volume is sent whole by the next run; Docker itself refuses to remove a
volume a container uses, and a code volume a job's view still uses or a run in flight holds is kept
(within a living code volume, runs prune old trees themselves: `dtrun.code.retention`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from dtrun.cli.ages import ago, parse_age
from dtrun.cli.app import app

if TYPE_CHECKING:
    from dtrun.backends.docker import DockerBackend

volumes_app = typer.Typer(help="List and prune the volumes dtrun keeps as caches on a Docker host.",
                          no_args_is_help=True)
app.add_typer(volumes_app, name="volumes")

#: label -> what the volume caches
CACHE_LABELS = {"dev.dtrun.artifact": "dep artifact", "dev.dtrun.ca": "CA bundle", "dev.dtrun.cache": "cache",
                "dev.dtrun.code": "code"}
PREFIXES = ("dtrun-art-", "dtrun-ca-", "dtrun-cache-", "dtrun-code-")

HostOpt = Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint.")]


def cache_volumes(backend: DockerBackend, store_url: str | None = None) -> list[tuple[str, str, float]]:
    """(name, kind, created) of dtrun's content-keyed cache volumes on the host, oldest first; with
    `store_url`, only those made for that store."""
    from dtrun.store.store import store_label

    found: dict[str, tuple[str, str, float]] = {}
    for label, kind in CACHE_LABELS.items():
        labels = [label, f"dev.dtrun.store={store_label(store_url)}"] if store_url else [label]
        for volume in backend.list_volumes(labels):
            if volume.name.startswith(PREFIXES):
                found[volume.name] = (volume.name, _kind(kind, volume.labels), volume.created)
    return sorted(found.values(), key=lambda v: v[2])


def _kind(kind: str, labels: dict[str, str]) -> str:
    """What a volume holds; for a `cache:` path, which workflow's and where it is mounted."""
    workflow, path = labels.get("dev.dtrun.cache.workflow"), labels.get("dev.dtrun.cache.path")
    if kind == "code" and labels.get("dev.dtrun.code"):
        return f"code ({labels['dev.dtrun.code']})"
    return f"{kind} ({workflow}: {path})" if kind == "cache" and workflow and path else kind


ThisStoreOpt = Annotated[bool, typer.Option("--this-store", help="Only the caches made for the current store "
                                             "(other users of a shared host keep theirs).")]


def _client(host: str | None) -> DockerBackend:
    from dtrun.api import Session

    return Session(host=host).docker()


def _store_url(this_store: bool) -> str | None:
    from dtrun.config import load_settings

    return load_settings().store if this_store else None


@volumes_app.command("list")
def list_(host: HostOpt = None, this_store: ThisStoreOpt = False) -> None:
    """List dtrun's cache volumes on the host with what each holds and its age."""
    now = time.time()
    rows = cache_volumes(_client(host), _store_url(this_store))
    if not rows:
        typer.echo("no cache volumes")
        return
    width = max(len(name) for name, _, _ in rows)
    typer.echo(f"{'VOLUME':<{width}}  {'HOLDS':<12}  CREATED")
    for name, kind, created in rows:
        typer.echo(f"{name:<{width}}  {kind:<12}  {ago(now - created)}")


@volumes_app.command("prune")
def prune(
    older_than: Annotated[str, typer.Option("--older-than", help="Remove caches created longer ago than "
                                            "this (7d, 12h, 30m, 0s).")] = "7d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be removed.")] = False,
    host: HostOpt = None,
    this_store: ThisStoreOpt = False,
) -> None:
    """Remove dtrun's cache volumes created before --older-than; never any other volume.

    Volumes a container still uses are kept (Docker refuses); a removed dep artifact or CA bundle is
    rebuilt from the store by the next job that needs it, a removed `cache:` path starts empty again.
    """
    from dtrun.errors import NotFound

    limit = parse_age(older_than)
    client = _client(host)
    now = time.time()
    removed = kept = 0
    for name, kind, created in cache_volumes(client, _store_url(this_store)):
        if now - created < limit:
            continue
        if dry_run:
            typer.echo(f"would remove {name} ({kind}, created {ago(now - created)})")
            removed += 1
            continue
        try:
            refused = client.remove_code(name) if name.startswith("dtrun-code-") else client.delete_volume(name)
        except NotFound:
            continue
        if refused:
            typer.echo(f"kept {name}: {refused}")
            kept += 1
            continue
        typer.echo(f"removed {name} ({kind}, created {ago(now - created)})")
        removed += 1
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"{verb} {removed} volume{'s' if removed != 1 else ''}" + (f", kept {kept} in use" if kept else ""))
