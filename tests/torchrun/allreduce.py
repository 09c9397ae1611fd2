"""A distributed smoke test for torchrun on any backend: every rank all-reduces its rank and checks the sum.

Run under torchrun (CPU, gloo). With EXPECT_WORLD_SIZE set, the world size is checked too, so a run
whose nodes never met (each one a world of its own) fails instead of passing.
"""

import os
import sys

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
value = torch.tensor([float(rank)])
dist.all_reduce(value)
expected = world * (world - 1) / 2
assert value.item() == expected, f"rank {rank}: sum of ranks {value.item()} != {expected}"
wanted = int(os.environ.get("EXPECT_WORLD_SIZE", world))
assert world == wanted, f"rank {rank}: world size {world}, expected {wanted}"
# One write per line: the processes of a node share its output, and print() writes the newline apart.
sys.stdout.write(f"rank {rank}/{world} (node {os.environ.get('GROUP_RANK')}, local {os.environ.get('LOCAL_RANK')}): "
                 f"sum of ranks {value.item():.0f} == {expected:.0f} ok\n")
sys.stdout.flush()
dist.destroy_process_group()
