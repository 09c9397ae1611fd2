"""Typed models of the dstack-dialect workflow file.

Validation is strict (unknown properties are errors) because a misspelt key that is silently ignored
costs a user a whole GPU run. Lenient *forms* are accepted where the seed documents or real dstack
files use them: a number for `python`, a string for `commands`, `artifacts: [data]`.
"""

from __future__ import annotations

import math
import re
from dataclasses import field, replace
from typing import Annotated, Any, Literal

from dtrun.spec.typed import After, Alias, Before, Ge, Gt, MinLen, Model
from dtrun.spec.yamlpos import RawFloat
from dtrun.structs import struct

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)?\s*$", re.IGNORECASE)

#: Every provider the workflow language knows, whether or not its module is installed in this build.
PROVIDER_NAMES = ("bash", "python", "docker", "torchrun", "lab", "notebook", "code")
ProviderName = Literal["bash", "python", "docker", "torchrun", "lab", "notebook", "code"]

#: Workflow names appear in deps (`download:latest`, `owner/repo/download`) and on the command line.
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_size(value: Any) -> int | None:
    """`64GB`, `512MiB`, `1.5G` or a plain number of bytes -> bytes. Decimal and binary units."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected a size such as 16GB or 512MiB")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"'{value}' is not a size; expected a number with a unit such as 16GB or 512MiB")
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"'{value}' is not a size; expected a number with a unit such as 16GB or 512MiB")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    base = 1024 if "i" in unit else 1000
    letter = unit[:1] if unit[:1] != "b" else ""
    power = "bkmgtp".index(letter) if letter else 0
    return int(number * (base**power if letter else 1))


def _text(value: Any) -> Any:
    """Numbers written where text is meant (`python: 3.10`, `cuda: 12.1`) keep their source text."""
    if isinstance(value, RawFloat):
        return value.raw
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


Version = Annotated[str, Before(_text)]
Size = Annotated[int | None, Before(parse_size)]


@struct(frozen=True, kw_only=True)
class Artifact(Model):
    """An output folder saved when the job ends; `mount: true` also saves it while the job runs.

    A multi-node job's outputs come from node 0 (each node has a disk of its own); `node: N` saves the
    folder of node N instead, `node: all` every node's, node N's as `<path>/node<N>`.
    """

    path: Annotated[str, MinLen(1)]
    mount: bool = False
    node: Annotated[int, Ge(0)] | Literal["all"] = 0

    @classmethod
    def prepare(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value


@struct(frozen=True, kw_only=True)
class Gpu(Model):
    count: Annotated[int, Ge(0)] = 1
    name: str | None = None
    memory: Size = None

    @classmethod
    def prepare(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a GPU count or {name, count, memory}")
        if isinstance(value, str) and value.strip().isdigit():  # `gpu: ${{ gpus }}` substituted
            value = int(value)
        return {"count": value} if isinstance(value, int) else value


@struct(frozen=True, kw_only=True)
class Resources(Model):
    gpu: Gpu | None = None
    memory: Size = None
    shm_size: Size = None
    cpu: Annotated[float, Gt(0)] | None = None
    interruptible: bool = False
    local: bool = False

    @property
    def gpu_count(self) -> int:
        return self.gpu.count if self.gpu else 0


@struct(frozen=True, kw_only=True)
class RegistryAuth(Model):
    """`registry_auth` of the docker provider: who pulls its image. Values are usually
    `${{ secrets.NAME }}`, resolved only when the job starts; the password is never shown."""

    username: str
    password: str = field(repr=False)


@struct(frozen=True, kw_only=True)
class Dep(Model):
    """One dependency: on a tag, or on a workflow (optionally at a tag), maybe in another repository.

    Written as a string (`:tag`, `:owner/repo/tag`, `workflow`, `workflow:tag`, `owner/repo/workflow`) or
    as a mapping (`{tag: name}`, `{workflow: name}`, where the name may carry `owner/repo/` too).
    """

    workflow: str | None = None
    tag: str | None = None
    repo: str | None = None

    @classmethod
    def prepare(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _parse_dep(value)
        if isinstance(value, dict):
            known = {k: value[k] for k in ("workflow", "tag", "repo") if k in value}
            if isinstance(known.get("tag"), str) and "repo" not in known and "/" in known["tag"]:
                repo, _, known["tag"] = known["tag"].rpartition("/")
                known["repo"] = repo
            if isinstance(known.get("workflow"), str) and "repo" not in known and \
                    ("/" in known["workflow"] or ":" in known["workflow"]):
                parsed = _parse_dep(known["workflow"])
                if known.get("tag") and parsed.get("tag"):
                    raise ValueError("the tag is given twice (in 'workflow' and in 'tag')")
                known.update({k: v for k, v in parsed.items() if v is not None})
            return {**value, **known}
        return value

    def check(self) -> None:
        if not self.workflow and not self.tag:
            raise ValueError("a dependency names a workflow or a tag")
        for part, what in ((self.workflow, "workflow"), (self.tag, "tag")):
            if part is not None and not re.match(NAME_PATTERN, part):
                raise ValueError(f"'{part}' is not a valid {what} name (letters, digits, '.', '-', '_')")
        if self.repo is not None:
            segments = self.repo.split("/")
            if len(segments) < 2 or not all(segments):
                raise ValueError(f"'{self.repo}' is not a repository; another repository is written "
                                 "owner/repo, as in owner/repo/workflow or :owner/repo/tag")

    @property
    def is_runtime(self) -> bool:
        """A workflow of this repository without a tag: under `depends-on` it runs in the same run
        (under `deps` it means that workflow's last successful run; see `Workflow.runtime_deps`)."""
        return bool(self.workflow) and not self.tag and not self.repo

    def __str__(self) -> str:
        prefix = f"{self.repo}/" if self.repo else ""
        if self.workflow:
            return f"{prefix}{self.workflow}" + (f":{self.tag}" if self.tag else "")
        return f":{prefix}{self.tag}"


def _parse_dep(value: str) -> dict[str, Any]:
    text = value.strip()
    if not text or text == ":":
        raise ValueError("a dependency cannot be empty; write :tag, workflow, workflow:tag or owner/repo/workflow")
    if text.startswith(":"):
        repo, _, tag = text[1:].rpartition("/")
        return {"tag": tag, "repo": repo or None}
    repo, _, rest = text.rpartition("/")
    workflow, sep, tag = rest.partition(":")
    if sep and not tag:
        raise ValueError(f"'{text}' names no tag after ':'; write {workflow}:TAG or just {workflow}")
    return {"workflow": workflow, "tag": tag or None, "repo": repo or None}


#: Earlier dstack property names and the names they mean now.
OLDER_NAMES = {"environment": "env", "script": "file"}
#: Providers whose `version` is the version of their tool (JupyterLab, Notebook, VS Code), not of Python.
DEV_ENVIRONMENTS = ("lab", "notebook", "code")


def _split(text: str) -> list[str]:
    import shlex

    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cannot split '{text}' into arguments: {exc}") from None


PythonInstall = Literal["auto", "system", "conda", "uv"]


def _one_or_many(value: Any) -> Any:
    """`commands: echo hi` means one command."""
    return [value] if isinstance(value, str) else value


def _workflow_name(value: str) -> str:
    if not re.match(NAME_PATTERN, value):
        raise ValueError(f"'{value}' is not a valid workflow name: use letters, digits, '.', '-' and '_' "
                         "(no spaces, ':' or '/', which dependencies use)")
    return value


def _secret_names(value: list[str]) -> list[str]:
    for name in value:
        _env_name(name)
    return value


def _cache_forms(value: Any) -> Any:
    """dstack 0.7 wrote `- path: ~/.cache/pip`, later versions `- ~/.cache/pip`; both mean the path."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        return [v["path"] if isinstance(v, dict) and set(v) == {"path"} else v for v in value]
    return value


def _cache_paths(value: list[str]) -> list[str]:
    for path in value:
        if not path.strip():
            raise ValueError("a `cache` path is empty")
        if path.startswith("~") and not (path == "~" or path.startswith("~/")):
            raise ValueError(f"cache path '{path}': only `~/` (the home of the job's user) is understood")
    return value


def _args_forms(value: Any) -> Any:
    if isinstance(value, str):
        return _split(value)
    return [_text(v) for v in value] if isinstance(value, list) else value


def _env_forms(value: Any) -> Any:
    if isinstance(value, list):
        env: dict[str, str | None] = {}
        for item in value:
            if not isinstance(item, str):
                raise ValueError("env entries are NAME=value or NAME")
            name, sep, val = item.partition("=")
            env[_env_name(name.strip())] = val if sep else None
        return env
    if isinstance(value, dict):
        return {_env_name(k): None if v is None else str(v).lower() if isinstance(v, bool) else str(_text(v))
                for k, v in value.items()}
    return value


Commands = Annotated[list[str], Before(_one_or_many)]


@struct(frozen=True, kw_only=True)
class Workflow(Model):
    name: Annotated[str, After(_workflow_name)]
    provider: ProviderName
    help: str | None = None
    deps: list[Dep] = field(default_factory=list)
    depends_on: Annotated[list[Dep], Alias("depends-on")] = field(default_factory=list)
    commands: Commands = field(default_factory=list)
    python: Version | None = None
    python_install: PythonInstall | None = None
    requirements: str | None = None
    cuda: Version | None = None
    file: str | None = None
    args: Annotated[list[str], Before(_args_forms)] = field(default_factory=list)
    image: str | None = None
    entrypoint: str | list[str] | None = None
    registry_auth: RegistryAuth | None = None
    env: Annotated[dict[str, str | None], Before(_env_forms)] = field(default_factory=dict)
    working_dir: str | None = None
    artifacts: list[Artifact] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    ports: Annotated[int, Ge(0)] = 0
    cache: Annotated[list[str], Before(_cache_forms), After(_cache_paths)] = field(default_factory=list)
    nodes: Annotated[int, Ge(1)] = 1
    #: torchrun's processes per node; None: one per GPU (one on a CPU-only node).
    nproc_per_node: Annotated[int, Ge(1)] | None = None
    secrets: Annotated[list[str], After(_secret_names)] | None = None
    #: Shell commands run before the main ones, in the same shell (dstack 0.2-0.7 `before_run`).
    before_run: Commands = field(default_factory=list)
    #: Commands run before a dev environment's app starts (lab, notebook, code; dstack 0.7 `setup`).
    setup: Commands = field(default_factory=list)
    #: The version of a dev environment's tool (`version:` of lab, notebook, code); None: the default.
    tool_version: Version | None = None
    #: dstack 0.7 `ssh: true` (an SSH server in the job); accepted with a warning, see `spec.legacy`.
    ssh: bool = False
    #: Hosted-era `depends-on: {repo: {include: [...]}}`: the repository files the job depends on.
    repo_include: Commands = field(default_factory=list)
    #: Hosted-era `depends-on: {variables: [...]}`: the variables the job depends on.
    depends_variables: list[str] | None = None
    #: The workflow's own properties handed to a repository-defined provider (`.dstack/providers.yaml`).
    provider_data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def prepare(cls, value: Any) -> Any:
        """Names earlier dstack providers used: `image` alone means docker; `environment`, `version`,
        `python_script` (the script with its arguments), `script` and `resources.nodes`."""
        if not isinstance(value, dict):
            return value
        value = dict(value)
        if "provider" not in value and "image" in value:
            value["provider"] = "docker"
        if "version" in value:
            new = "tool_version" if value.get("provider") in DEV_ENVIRONMENTS else "python"
            if new in value:
                raise ValueError(f"'version' and '{new}' are the same property here; keep '{new}'")
            value[new] = value.pop("version")
        for old, new in OLDER_NAMES.items():
            if old in value:
                if new in value:
                    raise ValueError(f"'{old}' and '{new}' are the same property; keep '{new}'")
                value[new] = value.pop(old)
        if "python_script" in value:
            if "file" in value or "args" in value:
                raise ValueError("'python_script' is the script with its arguments; it cannot be combined with "
                                 "'file' or 'args'")
            words = _split(str(_text(value.pop("python_script"))))
            value["file"], value["args"] = (words[0] if words else ""), words[1:]
        resources = value.get("resources")
        if isinstance(resources, dict) and "nodes" in resources:
            if "nodes" in value:
                raise ValueError("'nodes' is given twice (also under 'resources')")
            value["resources"] = {k: v for k, v in resources.items() if k != "nodes"}
            value["nodes"] = resources["nodes"]
        return value

    def check(self) -> None:
        for art in self.artifacts:
            if art.node != "all" and art.node >= self.nodes:
                raise ValueError(f"artifact '{art.path}' is to be saved from node {art.node}, but the workflow runs "
                                 f"on {self.nodes} node{'s' if self.nodes > 1 else ''} (0..{self.nodes - 1})")

    @property
    def all_deps(self) -> list[Dep]:
        return [*self.deps, *self.depends_on]

    @property
    def runtime_deps(self) -> list[str]:
        """`depends-on` workflows of this repository without a tag: they run (or are reused) in this run."""
        return [d.workflow for d in self.depends_on if d.is_runtime and d.workflow]

    @property
    def input_deps(self) -> list[Dep]:
        """Every other dependency: a tag, a workflow's last successful run, another repository's artifacts."""
        return [*self.deps, *(d for d in self.depends_on if not d.is_runtime)]


def _env_name(name: str) -> str:
    if not ENV_NAME.match(name):
        raise ValueError(f"'{name}' is not an environment variable name (letters, digits and _, not first a digit)")
    return name


def with_gpus(workflow: Workflow, count: int) -> Workflow:
    """`dtrun run W --gpus N`: N GPUs, keeping the model and memory the workflow asks for; 0 drops them.

    Applied to the workflow before planning, so the image follows (a GPU base image for N > 0).
    """
    resources = workflow.resources
    gpu = None if count == 0 else (replace(resources.gpu, count=count) if resources.gpu else Gpu(count=count))
    return replace(workflow, resources=replace(resources, gpu=gpu))
