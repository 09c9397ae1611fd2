"""Typed models of the dstack-dialect workflow file.

Validation is strict (unknown properties are errors) because a misspelt key that is silently ignored
costs a user a whole GPU run. Lenient *forms* are accepted where the seed documents or real dstack
files use them: a number for `python`, a string for `commands`, `artifacts: [data]`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from dtrun.spec.yamlpos import RawFloat

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def parse_size(value: Any) -> int | None:
    """`64GB`, `512MiB`, `1.5G` or a plain number of bytes -> bytes. Decimal and binary units."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected a size such as 16GB or 512MiB")
    if isinstance(value, (int, float)):
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


Version = Annotated[str, BeforeValidator(_text)]
Size = Annotated[int | None, BeforeValidator(parse_size)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Artifact(Strict):
    """An output folder saved when the job ends; `mount: true` also saves it while the job runs."""

    path: str
    mount: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value


class Gpu(Strict):
    count: int = Field(default=1, ge=0)
    name: str | None = None
    memory: Size = None

    @model_validator(mode="before")
    @classmethod
    def _from_count(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a GPU count or {name, count, memory}")
        return {"count": value} if isinstance(value, int) else value


class Resources(Strict):
    gpu: Gpu | None = None
    memory: Size = None
    shm_size: Size = Field(default=None, alias="shm_size")
    cpu: float | None = Field(default=None, gt=0)
    interruptible: bool = False
    local: bool = False

    @property
    def gpu_count(self) -> int:
        return self.gpu.count if self.gpu else 0


class Dep(Strict):
    """One dependency: on a tag, or on a workflow (optionally at a tag), maybe in another repository."""

    workflow: str | None = None
    tag: str | None = None
    repo: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text:
            raise ValueError("a dependency cannot be empty")
        if text.startswith(":"):
            repo, _, tag = text[1:].rpartition("/")
            return {"tag": tag, "repo": repo or None}
        repo, _, rest = text.rpartition("/")
        workflow, _, tag = rest.partition(":")
        return {"workflow": workflow, "tag": tag or None, "repo": repo or None}

    @model_validator(mode="after")
    def _check(self) -> Dep:
        if not self.workflow and not self.tag:
            raise ValueError("a dependency names a workflow or a tag")
        return self

    @property
    def is_runtime(self) -> bool:
        """A workflow of this repository without a tag: it runs (or is reused) as part of this run."""
        return bool(self.workflow) and not self.tag and not self.repo

    def __str__(self) -> str:
        prefix = f"{self.repo}/" if self.repo else ""
        if self.workflow:
            return f"{prefix}{self.workflow}" + (f":{self.tag}" if self.tag else "")
        return f":{prefix}{self.tag}"


PythonInstall = Literal["auto", "system", "conda", "uv"]


class Workflow(Strict):
    name: str = Field(min_length=1)
    provider: str
    help: str | None = None
    deps: list[Dep] = Field(default_factory=list)
    depends_on: list[Dep] = Field(default_factory=list, alias="depends-on")
    commands: list[str] = Field(default_factory=list)
    python: Version | None = None
    python_install: PythonInstall | None = None
    requirements: str | None = None
    cuda: Version | None = None
    file: str | None = None
    args: list[str] = Field(default_factory=list)
    image: str | None = None
    entrypoint: str | list[str] | None = None
    registry_auth: dict[str, str] | None = None
    env: dict[str, str | None] = Field(default_factory=dict)
    working_dir: str | None = None
    artifacts: list[Artifact] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    ports: int = Field(default=0, ge=0)
    cache: list[str] = Field(default_factory=list)
    nodes: int = Field(default=1, ge=1)
    secrets: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _older_forms(cls, value: Any) -> Any:
        if isinstance(value, dict) and "provider" not in value and "image" in value:
            return {**value, "provider": "docker"}
        return value

    @field_validator("commands", mode="before")
    @classmethod
    def _commands(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        return value

    @field_validator("args", mode="before")
    @classmethod
    def _args(cls, value: Any) -> Any:
        if isinstance(value, str):
            import shlex

            return shlex.split(value)
        return [_text(v) for v in value] if isinstance(value, list) else value

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        if isinstance(value, list):
            env: dict[str, str | None] = {}
            for item in value:
                if not isinstance(item, str):
                    raise ValueError("env entries are NAME=value or NAME")
                name, sep, val = item.partition("=")
                env[name.strip()] = val if sep else None
            return env
        if isinstance(value, dict):
            return {k: None if v is None else str(_text(v)).lower() if isinstance(v, bool) else str(_text(v))
                    for k, v in value.items()}
        return value

    @property
    def all_deps(self) -> list[Dep]:
        return [*self.deps, *self.depends_on]


class WorkflowsFile(Strict):
    workflows: list[dict[str, Any]] = Field(default_factory=list)
