"""JSON Schemas of the workflow and variables files, for editors with the YAML language server.

Built from the models' type hints, then adjusted where the models accept more than their types say
(`python: 3.10` as a number, `commands` as one string, `artifacts: [data]`, `gpu: 1`, sizes such as
`64GB`, deps as strings) and with each provider's required and allowed properties.
"""

from __future__ import annotations

from typing import Any

from dtrun.spec.legacy import PROVIDER_ALIASES
from dtrun.spec.models import ENV_NAME, NAME_PATTERN, PROVIDER_NAMES, Artifact, Dep, Gpu, Resources, Workflow
from dtrun.spec.rules import ALIASES, ALL_PROPERTIES, INTERNAL, PROVIDER_PROPERTIES
from dtrun.spec.typed import json_schema

_STRING = {"type": "string"}
_TEXT = {"type": ["string", "number"]}
_SIZE = {"type": ["string", "integer"], "pattern": r"^\s*\d+(\.\d+)?\s*([kKmMgGtTpP]i?[bB]?|[bB])?\s*$",
         "description": "bytes, or a number with a unit: 512MB, 64GB, 1.5GiB"}

DESCRIPTIONS = {
    "name": "The workflow's name: `dtrun run NAME`.",
    "provider": "How the workflow runs: " + ", ".join(PROVIDER_NAMES) + ".",
    "help": "What the workflow does (shown by `dtrun list`).",
    "deps": "Artifacts to mount before the job starts: `:tag`, `{tag: name}`, `workflow` (its last "
            "successful run), `workflow:tag`, `owner/repo/workflow`, `:owner/repo/tag`.",
    "depends-on": "Workflows that run first in the same run (`download`), or tagged runs (`download:latest`).",
    "commands": "Shell commands, run in order in one shell (a list, or one multi-line string).",
    "python": "Python version, e.g. 3.10 (written as a number it still means 3.10).",
    "python_install": "How Python gets into the image: auto, system, conda or uv.",
    "requirements": "A pip requirements file, relative to the project folder (default requirements.txt).",
    "cuda": "CUDA version of the image, e.g. 12.1.",
    "file": "The script to run (python and torchrun providers).",
    "args": "Arguments of the script: a list, or one string split like a shell does.",
    "image": "The Docker image to run as it is (docker provider).",
    "entrypoint": "Overrides the image's entrypoint (docker provider).",
    "registry_auth": "Credentials to pull the image: {username, password}.",
    "env": "Environment variables: a list of NAME=value or NAME (the host's value), or a mapping.",
    "working_dir": "The job's working directory, relative to the project folder.",
    "artifacts": "Output folders saved when the job ends: paths, or {path, mount, node} (node: which node of a "
                 "multi-node job the folder is saved from, default 0; `all`: every node's, as PATH/nodeN).",
    "resources": "Hardware the job needs: gpu, memory, shm_size, cpu, interruptible, local.",
    "ports": "How many ports the job opens; it gets PORT_0, PORT_1, ...",
    "cache": "Paths kept between runs of this workflow.",
    "nodes": "Number of nodes (torchrun provider).",
    "nproc_per_node": "Processes per node (torchrun provider); default: one per GPU, one without GPUs.",
    "secrets": "Names of secrets the job receives as environment variables.",
    "environment": "Earlier name of `env`.",
    "version": "Earlier name of `python`; for lab, notebook and code, the version of the tool.",
    "before_run": "Shell commands run before the main ones, in the same shell.",
    "setup": "Commands run before the dev environment's app starts (lab, notebook, code).",
    "ssh": "dstack 0.7: an SSH server in the job. Accepted with a warning: use `docker exec` here.",
    "script": "Earlier name of `file`.",
    "python_script": "Earlier form of `file` and `args`: the script with its arguments, e.g. `train.py --lr 0.1`.",
}


def workflows_schema() -> dict[str, Any]:
    """The schema of `.dtrun/workflows.yaml` (and of `.dstack/workflows.yaml`)."""
    defs: dict[str, Any] = {}
    props: dict[str, Any] = json_schema(Workflow)["properties"]
    props["name"] = {"type": "string", "pattern": NAME_PATTERN}
    props["provider"] = {"enum": [*PROVIDER_NAMES, *PROVIDER_ALIASES]}
    props["python"] = props["cuda"] = _TEXT
    props["commands"] = props["entrypoint"] = {"anyOf": [{"type": "array", "items": _STRING}, _STRING]}
    props["args"] = {"anyOf": [{"type": "array", "items": _TEXT}, _STRING]}
    props["secrets"] = {"type": "array", "items": {"type": "string", "pattern": ENV_NAME.pattern}}
    props["env"] = {"anyOf": [
        {"type": "array", "items": {"type": "string", "pattern": ENV_NAME.pattern[:-1] + "(=.*)?$"}},
        {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
    ]}
    props["deps"] = props["depends-on"] = {"type": "array", "items": {"anyOf": [_STRING, {"$ref": "#/$defs/Dep"}]}}
    props["artifacts"] = {"type": "array", "items": {"anyOf": [_STRING, {"$ref": "#/$defs/Artifact"}]}}
    props["resources"] = {"$ref": "#/$defs/Resources"}
    props["environment"] = props["env"]
    props["version"] = _TEXT
    props["script"] = props["python_script"] = _STRING
    props["before_run"] = props["setup"] = props["commands"]
    props["ssh"] = {"type": "boolean"}
    props["cache"] = {"anyOf": [_STRING, {"type": "array", "items": {"anyOf": [_STRING, {
        "type": "object", "additionalProperties": False, "required": ["path"], "properties": {"path": _STRING}}]}}]}
    props["registry_auth"] = {"type": "object", "additionalProperties": False, "required": ["username", "password"],
                              "properties": {"username": _STRING, "password": _STRING}}
    # Historical forms (dtrun.spec.legacy): depends-on as a mapping, provider as {name, repo} or name@channel.
    props["depends-on"] = {"anyOf": [props["deps"], {
        "type": "object", "additionalProperties": False, "properties": {
            "workflows": props["deps"],
            "repo": {"type": "object", "additionalProperties": False,
                     "properties": {"include": {"type": "array", "items": _STRING}}},
            "variables": {"type": "array", "items": _STRING}}}]}
    for name, description in DESCRIPTIONS.items():
        props[name] = {**props[name], "description": description}
    defs["Dep"] = json_schema(Dep)
    defs["Artifact"] = json_schema(Artifact)
    gpu = json_schema(Gpu)
    gpu["properties"]["memory"] = _SIZE
    defs["Gpu"] = gpu
    resources = json_schema(Resources)
    resources["properties"].update({"memory": _SIZE, "shm_size": _SIZE, "nodes": {
                                        "type": "integer", "minimum": 1, "description": "Earlier place of `nodes`."},
                                    "gpu": {"anyOf": [{"type": "integer", "minimum": 0}, {"$ref": "#/$defs/Gpu"}]}})
    defs["Resources"] = resources
    properties = {k: v for k, v in props.items() if k in ALL_PROPERTIES and k not in INTERNAL}
    names = "|".join([*PROVIDER_NAMES, *PROVIDER_ALIASES])
    properties["provider"] = {"description": properties["provider"]["description"], "anyOf": [
        props["provider"], {"type": "string", "pattern": f"^({names})@[A-Za-z0-9_.-]+$"},
        {"type": "object", "additionalProperties": False, "required": ["name"],
         "properties": {"name": {"enum": [*PROVIDER_NAMES, *PROVIDER_ALIASES]}, "repo": _STRING}}]}
    properties["gpu"] = {**resources["properties"]["gpu"], "description": "Earlier place of `resources.gpu`."}
    properties["ports"] = {"description": properties["ports"]["description"], "anyOf": [
        {"type": "integer", "minimum": 0}, {"type": "array", "items": {"type": "integer"}}]}
    properties["template"] = {"description": "Early 2022: the provider's name, or a mapping of properties the "
                                             "workflow is made from.", "anyOf": [_STRING, {"type": "object"}]}
    workflow = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "required": ["name"],
        "anyOf": [{"required": ["provider"]}, {"required": ["image"]}, {"required": ["template"]}],
        "allOf": [_provider_rule(p) for p in PROVIDER_NAMES],
    }
    defs["Workflow"] = workflow
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "dtrun workflows (dstack dialect)",
        "type": "object",
        "properties": {"workflows": {"type": "array", "items": {"$ref": "#/$defs/Workflow"}}},
        "required": ["workflows"],
        "additionalProperties": False,
        "$defs": defs,
    }


def variables_schema() -> dict[str, Any]:
    """The schema of `variables.yaml`: workflow name -> variable name -> default."""
    value = {"type": ["string", "number", "boolean", "null"]}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "dtrun variables",
        "type": "object",
        "properties": {"variables": {"type": "object", "additionalProperties": {
            "type": ["object", "null"],
            "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_-]*$"},
            "additionalProperties": value}}},
        "additionalProperties": False,
    }


def _provider_rule(provider: str) -> dict[str, Any]:
    required, allowed = PROVIDER_PROPERTIES[provider]
    condition: dict[str, Any] = {"properties": {"provider": {"const": provider}}, "required": ["provider"]}
    if provider == "docker":
        condition = {"anyOf": [condition, {"not": {"anyOf": [{"required": ["provider"]}, {"required": ["template"]}]}}]}
    visible = [a for a in allowed if a not in INTERNAL]
    then: dict[str, Any] = {"propertyNames": {"enum": [*visible, "gpu", "template"]}}
    needs = [{"anyOf": [{"required": [k]} for k in (key, *ALIASES.get(key, ()))]} for key in required]
    if needs:
        then["allOf"] = needs
    return {"if": condition, "then": then}
