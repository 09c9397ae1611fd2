"""`dtrun hosts`: what a Docker host offers — CPUs, memory, GPUs (model, memory, driver), NVIDIA runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dtrun.cli.app import app

if TYPE_CHECKING:
    from dtrun.backends.docker.hostinfo import HostInfo


@app.command()
def hosts(
    host: Annotated[list[str] | None, typer.Argument(
        help="Docker endpoints to describe (default: the one dtrun would use: --host, config, DOCKER_HOST, "
        "the current Docker context, the local socket).")] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Ask the host for its GPUs again (not from the "
                                                             "cache).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> int:
    """Show what a Docker host offers: CPUs, memory, GPUs and whether the NVIDIA runtime is there."""
    import json

    from dtrun.api import Session
    from dtrun.backends.docker.endpoint import resolve
    from dtrun.config import load_settings
    from dtrun.errors import DtrunError
    from dtrun.ui import console

    settings = load_settings()
    if not host and (settings.backend or "docker") != "docker":  # a cluster says what it offers itself
        from dtrun.backends.base import DescribesHosts
        from dtrun.backends.registry import create_backend

        backend = create_backend(settings)
        if isinstance(backend, DescribesHosts):
            text, data = backend.describe_hosts()
            typer.echo(json.dumps(data, indent=1) if as_json else text)
            return 0
    found: list[tuple[str, HostInfo | None, str | None]] = []
    chosen_hosts: list[str | None] = list(host or []) or [None]
    for chosen in chosen_hosts:
        endpoint = resolve(chosen, None if chosen else settings.host)
        try:
            info = Session(host=chosen, settings=settings).docker().host_info(refresh=refresh)
            found.append((endpoint.source, info, None))
        except DtrunError as exc:
            found.append((endpoint.url, None, exc.message))
    if as_json:
        typer.echo(json.dumps([{"source": s, **(i.to_json() if i else {}), **({"error": e} if e else {})}
                               for s, i, e in found], indent=1))
    else:
        for source, described, error in found:
            if described is None:
                console().print(f"[red]unreachable[/red] {error}")
                continue
            typer.echo(_describe(described, source))
    return 1 if any(e for _, _, e in found) else 0


def _describe(info: HostInfo, source: str) -> str:
    from dtrun.units import size

    lines = [
        f"{info.endpoint}  ({source})",
        f"  name      {info.name}  ({info.os}, Docker {info.server_version})",
        f"  cpus      {info.cpus}",
        f"  memory    {size(info.memory)}",
        f"  nvidia    {'yes' if info.nvidia else 'no'} (runtimes: {', '.join(info.runtimes) or 'none'})",
    ]
    if info.gpus:
        lines.append(f"  gpus      {len(info.gpus)}")
        lines += [f"    {g.index}  {g.name}  {g.memory_gb:.0f} GiB  driver {g.driver}  {g.uuid}" for g in info.gpus]
    elif info.gpu_error:
        lines.append(f"  gpus      unknown: {info.gpu_error}")
    else:
        lines.append("  gpus      none")
    return "\n".join(lines)
