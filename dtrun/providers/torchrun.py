"""`provider: torchrun`: a training script under `torchrun`, one process per GPU, torch preinstalled.

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
        if workflow.nodes > 1:
            raise SpecError(f"workflow '{workflow.name}' asks for {workflow.nodes} nodes, but a Docker host runs "
                            "one node", hint="use `nodes: 1` (all GPUs of the host are used)")
        per_node = torchrun_launch.procs_per_node(workflow.resources.gpu_count)
        argv = torchrun_launch.standalone_argv(workflow.file, list(workflow.args), per_node)
        return JobShape(image=python_image(self.name, workflow, ctx, tools=("torch",)),
                        command=with_setup(workflow.commands, argv), ports=workflow.ports)
