"""`provider: torchrun`: a training script under `torchrun`, one process per GPU, torch preinstalled.

With `nodes: N` the job spans N nodes: the shape carries a `Torchrun` and each backend starts N nodes
its own way (`torchrun_launch.py`: N containers on a network of their own, one srun task per node, an
Indexed Job), all failing or restarting together.

torch comes from the PyTorch index of the image's CUDA (or the CPU index), in its own layer, so the
user's requirements can change without reinstalling it; a torch pinned in the requirements picks both
the torch release and, for GPU jobs, the CUDA of the base.
"""

from __future__ import annotations

from dtrun.providers import torchrun_launch
from dtrun.providers.base import JobShape, ProviderContext, python_image, with_setup
from dtrun.spec.models import Workflow


class TorchrunProvider:
    name = "torchrun"

    def shape(self, workflow: Workflow, ctx: ProviderContext) -> JobShape:
        from dtrun.errors import SpecError

        if not workflow.file:
            raise SpecError(f"workflow '{workflow.name}' (provider torchrun) has no `file`",
                            hint="add `file: train.py` (the training script, relative to the project folder)")
        per_node = workflow.nproc_per_node or torchrun_launch.procs_per_node(workflow.resources.gpu_count)
        nodes = None
        if workflow.nodes > 1:  # every node runs the same argv; the backend gives each its rank and node 0
            nodes = torchrun_launch.Torchrun(nodes=workflow.nodes, nproc_per_node=per_node)
            argv = torchrun_launch.node_argv(workflow.file, list(workflow.args))
        else:
            argv = torchrun_launch.standalone_argv(workflow.file, list(workflow.args), per_node)
        return JobShape(image=python_image(self.name, workflow, ctx, tools=("torch",)),
                        command=with_setup(workflow.commands, argv), ports=workflow.ports, torchrun=nodes)
