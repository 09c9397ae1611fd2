"""Sizes as people write them, for messages (shared by the engine, the backends and the CLI)."""

from __future__ import annotations


def size(n: float) -> str:
    """Bytes as people wrote them: `32 MiB` for a binary round number, `64 GB` or `25.3 GB` otherwise."""
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= factor and n % factor == 0:
            return f"{n // factor:.0f} {unit}"
    for unit, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= factor:
            return f"{n / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n:.0f} B"
