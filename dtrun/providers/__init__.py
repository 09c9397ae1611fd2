"""Providers: each maps one workflow to its image, command and extras. One module per provider."""

from __future__ import annotations

from dtrun.providers.base import JobShape, Provider, ProviderContext, WithPrelude
from dtrun.providers.bash import BashProvider
from dtrun.providers.code import CodeProvider
from dtrun.providers.docker import DockerProvider
from dtrun.providers.jupyter import LabProvider, NotebookProvider
from dtrun.providers.python import PythonProvider
from dtrun.providers.torchrun import TorchrunProvider

# Each wrapped so that its jobs create their artifact folders and run `before_run` first (issue 12).
PROVIDERS: dict[str, Provider] = {p.name: WithPrelude(p) for p in (
    BashProvider(), PythonProvider(), DockerProvider(), TorchrunProvider(), LabProvider(), NotebookProvider(),
    CodeProvider())}

__all__ = ["PROVIDERS", "JobShape", "Provider", "ProviderContext"]
