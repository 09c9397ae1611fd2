"""`dtrun hosts` on Slurm: partitions, their nodes, GPUs (GRES) and what is free now, from one `sinfo`."""

from __future__ import annotations

import re
from dataclasses import field
from typing import Any

from dtrun.backends.slurm.commands import SlurmCommands, SlurmError
from dtrun.structs import struct

_SEP = "\x1f"
_FIELDS = ("NodeList", "Partition", "StateLong", "CPUsState", "Memory", "AllocMem", "Gres", "GresUsed")


@struct(frozen=True)
class GpuCount:
    kind: str | None  # the GRES type (`a100`), None when the cluster names none
    total: int
    used: int = 0

    @property
    def free(self) -> int:
        return max(0, self.total - self.used)


@struct(frozen=True)
class SlurmNode:
    name: str
    partition: str
    state: str
    cpus: int
    cpus_free: int
    memory_mb: int
    memory_free_mb: int
    gpus: list[GpuCount] = field(default_factory=list)

    @property
    def available(self) -> bool:
        """Can take jobs: not down, drained, failing or in maintenance."""
        return not re.search(r"down|drain|fail|maint|unknown|not_responding|reboot", self.state)


@struct(frozen=True)
class Partition:
    name: str
    default: bool
    nodes: list[SlurmNode]

    @property
    def gpus(self) -> dict[str, tuple[int, int]]:
        """GPU type -> (free, total) over the partition's available nodes (`any` for untyped GRES)."""
        out: dict[str, tuple[int, int]] = {}
        for node in self.nodes:
            for gpu in node.gpus:
                free, total = out.get(gpu.kind or "any", (0, 0))
                out[gpu.kind or "any"] = (free + (gpu.free if node.available else 0), total + gpu.total)
        return out


def partitions(commands: SlurmCommands) -> list[Partition]:
    out = commands.run(["sinfo", "-h", "-N", "-O", ",".join(f"{f}:{_SEP}" for f in _FIELDS)], check=False)
    if out.code != 0:
        raise SlurmError(f"sinfo failed: {out.stderr.strip()}", hint="is slurmctld running? `scontrol ping` tells")
    return parse_sinfo(out.stdout)


def parse_sinfo(text: str) -> list[Partition]:
    """One `sinfo -N -O` line per (node, partition) -> partitions, the default one first and the rest
    by name (sinfo's own line order follows node state, so it changes from one call to the next)."""
    grouped: dict[str, list[SlurmNode]] = {}
    default: set[str] = set()
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(_SEP)]
        if len(parts) < len(_FIELDS):
            continue
        name, partition, state, cpus_state, memory, alloc_mem, gres, gres_used = parts[: len(_FIELDS)]
        if partition.endswith("*"):
            partition = partition[:-1]
            default.add(partition)
        _alloc, idle, _other, total = (_int(x) for x in (cpus_state.split("/") + ["0"] * 4)[:4])
        node = SlurmNode(name=name, partition=partition, state=state, cpus=total, cpus_free=idle,
                         memory_mb=_int(memory), memory_free_mb=max(0, _int(memory) - _int(alloc_mem)),
                         gpus=parse_gres(gres, gres_used))
        grouped.setdefault(partition, []).append(node)
    found = [Partition(name=p, default=p in default, nodes=nodes) for p, nodes in grouped.items()]
    return sorted(found, key=lambda p: (not p.default, p.name))


def parse_gres(gres: str, used: str) -> list[GpuCount]:
    """`gpu:a100:4(S:0-1),gpu:v100:2` and `gpu:a100:1(IDX:0)` -> the GPUs of a node, typed."""
    totals = _gpu_counts(gres)
    in_use = _gpu_counts(used)
    return [GpuCount(kind=kind, total=n, used=in_use.get(kind, 0)) for kind, n in totals.items()]


def _gpu_counts(text: str) -> dict[str | None, int]:
    counts: dict[str | None, int] = {}
    for item in re.split(r",(?![^()]*\))", text):  # commas inside (IDX:0,2) do not split
        item = re.sub(r"\(.*\)$", "", item.strip())
        parts = item.split(":")
        if not parts or parts[0] != "gpu" or len(parts) < 2:
            continue
        kind = parts[1] if len(parts) == 3 else None
        counts[kind] = counts.get(kind, 0) + _int(parts[-1])
    return counts


def _int(text: str) -> int:
    match = re.match(r"\d+", text.strip())
    return int(match.group()) if match else 0


def describe(parts: list[Partition], where: str) -> tuple[str, list[dict[str, Any]]]:
    """`dtrun hosts` on Slurm: one block per partition, one line per node (text), and the same as data."""
    lines = [f"Slurm cluster ({where})"]
    data: list[dict[str, Any]] = []
    for part in parts:
        gpus = ", ".join(f"{kind} {free}/{total} free" for kind, (free, total) in part.gpus.items()) or "none"
        lines.append(f"  partition {part.name}{' (default)' if part.default else ''}  gpus: {gpus}")
        for node in part.nodes:
            node_gpus = ", ".join(f"{g.kind or 'gpu'} {g.free}/{g.total} free" for g in node.gpus) or "no gpus"
            lines.append(f"    {node.name:<16} {node.state:<10} cpus {node.cpus_free}/{node.cpus} free  "
                         f"memory {node.memory_free_mb}/{node.memory_mb} MB free  {node_gpus}")
        data.append({"partition": part.name, "default": part.default,
                     "gpus": {k: {"free": f, "total": t} for k, (f, t) in part.gpus.items()},
                     "nodes": [{"name": n.name, "state": n.state, "available": n.available, "cpus": n.cpus,
                                "cpus_free": n.cpus_free, "memory_mb": n.memory_mb,
                                "memory_free_mb": n.memory_free_mb,
                                "gpus": [{"type": g.kind, "total": g.total, "free": g.free} for g in n.gpus]}
                               for n in part.nodes]})
    if not parts:
        lines.append("  no partitions (sinfo listed none)")
    return "\n".join(lines), data
