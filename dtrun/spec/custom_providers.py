"""Repository-defined providers: `.dstack/providers.yaml` of the hosted dstack.ai era (early 2022).

```yaml
providers:
  - name: curl
    image: python:3.9
    commands:
      - pip3 install -r providers/curl/requirements.txt
      - PYTHONPATH=providers python3 providers/curl/main.py
```

A provider there is itself a container. A workflow naming it (`provider: curl`, then its own properties
such as `url:` and `output:`) runs as that container: the provider's commands in the provider's image,
in the repository, with the workflow's own properties as JSON in `$DSTACK_WORKFLOW_DATA`, its artifacts
saved as any workflow's. What dstack's server did after that (the provider's Python API creating
further jobs) has no counterpart here; a one-line warning says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dtrun.errors import Position, SpecError
from dtrun.spec.errors import SpecWarning
from dtrun.spec.yamlpos import Document, PathKey, documents, side_files
from dtrun.structs import struct

#: Where the workflow's own properties reach the provider's commands.
DATA_ENV = "DSTACK_WORKFLOW_DATA"
#: Properties every workflow has; anything else belongs to the provider and goes into `DATA_ENV`.
WORKFLOW_KEYS = ("name", "help", "deps", "depends-on", "env", "environment", "working_dir", "artifacts",
                 "resources", "ports", "cache", "secrets", "repo_include", "depends_variables")


@struct(frozen=True)
class CustomProvider:
    name: str
    image: str
    commands: tuple[str, ...]
    position: Position


def provider_files(spec_dirs: list[Path]) -> list[Path]:
    return side_files(spec_dirs, "providers")


def load_providers(files: list[Path]) -> tuple[dict[str, CustomProvider], list[SpecError]]:
    """Every provider the repository defines, and every error in the files."""
    out: dict[str, CustomProvider] = {}
    errors: list[SpecError] = []
    for doc in documents(files, errors):
        data = doc.data
        items = data.get("providers") if isinstance(data, dict) else None
        if not isinstance(items, list):
            errors.append(SpecError("expected a `providers:` list", position=doc.position(()),
                                    hint="providers:\n  - name: curl\n    image: python:3.9\n    commands: [...]"))
            continue
        for index, item in enumerate(items):
            found = _provider(doc, ("providers", index), item)
            if isinstance(found, SpecError):
                errors.append(found)
            elif found.name in out:
                errors.append(SpecError(f"provider '{found.name}' is defined twice (first at "
                                        f"{out[found.name].position})", position=found.position,
                                        hint="provider names must be unique"))
            else:
                out[found.name] = found
    return out, errors


def _provider(doc: Document, path: PathKey, item: Any) -> CustomProvider | SpecError:
    where = doc.position(path)
    if not isinstance(item, dict):
        return SpecError("each provider is a mapping with name, image and commands", position=where)
    unknown = sorted(set(item) - {"name", "image", "commands"})
    if unknown:
        return SpecError(f"unknown provider property '{unknown[0]}'", position=doc.key_position((*path, unknown[0])),
                         hint="a provider has name, image and commands")
    name, image, commands = item.get("name"), item.get("image"), item.get("commands")
    if isinstance(commands, str):
        commands = [commands]
    if not isinstance(name, str) or not name or not isinstance(image, str) or not image:
        return SpecError("a provider needs `name` and `image`", position=where,
                         hint="- name: curl\n    image: python:3.9\n    commands: [...]")
    if not isinstance(commands, list) or not commands or not all(isinstance(c, str) for c in commands):
        return SpecError(f"provider '{name}' needs `commands` (the commands that start it)",
                         position=doc.position((*path, "commands")) if "commands" in item else where)
    return CustomProvider(name, image, tuple(commands), where)


def as_docker(item: dict[str, Any], provider: CustomProvider, doc: Document,
              path: PathKey) -> tuple[dict[str, Any], SpecWarning]:
    """A workflow of a repository-defined provider as the docker workflow that runs that provider."""
    own = {k: v for k, v in item.items() if k not in (*WORKFLOW_KEYS, "provider")}
    out = {k: v for k, v in item.items() if k in WORKFLOW_KEYS}
    out.update(provider="docker", image=provider.image, commands=list(provider.commands), provider_data=own)
    warning = SpecWarning(
        f"provider '{provider.name}' (defined at {provider.position}) runs as the job: its commands in "
        f"{provider.image}, with this workflow's own properties as JSON in ${DATA_ENV}; dstack's provider "
        "Python API (jobs created by the provider) is not available",
        doc.position((*path, "provider")), "provider")
    return out, warning


def data_json(data: dict[str, Any]) -> str:
    """The provider's properties as the JSON its commands read (numbers written as text stay text)."""
    return json.dumps(data, sort_keys=True, default=str)
