"""`provider: docker`: the user's image as it is, its own entrypoint and shell respected."""

from __future__ import annotations

from dtrun.images.spec import ImageSpec
from dtrun.providers.base import JobShape, ProviderContext
from dtrun.spec.models import Workflow


class DockerProvider:
    name = "docker"

    def shape(self, workflow: Workflow, ctx: ProviderContext) -> JobShape:
        from dtrun.errors import SpecError

        if not workflow.image:
            raise SpecError(f"workflow '{workflow.name}' (provider docker) has no `image`",
                            hint="add `image: <name>:<tag>` (the image to run as it is)")
        entrypoint = [workflow.entrypoint] if isinstance(workflow.entrypoint, str) else workflow.entrypoint
        command: list[str] | None = None
        if workflow.commands:
            # The image's own shell runs the commands; its ENTRYPOINT is bypassed unless one is given.
            command = ["/bin/sh", "-c", "\n".join(["set -e", *workflow.commands])]
            entrypoint = entrypoint or []
        return JobShape(image=ImageSpec(provider=self.name, user_image=workflow.image), command=command,
                        entrypoint=entrypoint, ports=workflow.ports)
