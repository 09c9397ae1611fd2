"""`provider: docker`: the user's image as it is, its own entrypoint and shell respected.

Also what a workflow written without a provider but with an `image` means (dstack before 0.1), and how
a provider of `.dstack/providers.yaml` runs (its image and commands; `spec.custom_providers`).
"""

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
        env: dict[str, str] = {}
        if workflow.provider_data:  # a provider of .dstack/providers.yaml reads its workflow's properties
            from dtrun.spec.custom_providers import DATA_ENV, data_json

            env[DATA_ENV] = data_json(workflow.provider_data)
        return JobShape(image=ImageSpec(provider=self.name, user_image=workflow.image), command=command,
                        entrypoint=entrypoint, ports=workflow.ports, env=env)
