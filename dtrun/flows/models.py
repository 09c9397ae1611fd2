"""Typed models of flow files and of `action-datatorch.yaml` (seed 004).

Strict like the workflow dialect: an unknown property is an error with a did-you-mean, because a
misspelt `needs` that is silently ignored runs jobs in the wrong order.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dtrun.spec.models import Resources

JOB_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
INPUT_TYPES = ("string", "integer", "float", "boolean", "array")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _scalar_text(value: Any) -> Any:
    """Numbers and booleans written where text is meant stay text (`tag: 1.0`, `cron: 5`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return getattr(value, "raw", None) or str(value)
    return value


class ActionObject(Strict):
    """`action: {name, tag, git}`: an action in any git repository (seed 004)."""

    name: str
    tag: str
    git: str | None = None

    @field_validator("tag", mode="before")
    @classmethod
    def _tag_text(cls, value: Any) -> Any:
        return _scalar_text(value)


class Step(Strict):
    id: str | None = None
    name: str | None = None
    action: str | ActionObject | None = None
    run: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, Any] = Field(default_factory=dict)
    if_: str | bool | None = Field(default=None, alias="if")

    @model_validator(mode="after")
    def _action_or_run(self) -> Step:
        if self.action is None and self.run is None:
            raise ValueError("a step needs an `action` (e.g. dtrun/shell) or a `run` command")
        if self.action is not None and self.run is not None:
            raise ValueError("a step has either an `action` or a `run` command, not both")
        if self.run is not None and self.inputs:
            raise ValueError("`inputs` belong to an `action`; a `run` step reads `env`")
        if self.id is not None and not JOB_ID.match(self.id):
            raise ValueError(f"step id '{self.id}' must start with a letter or _ and contain only "
                             "letters, digits, - and _")
        return self


class Job(Strict):
    name: str | None = None
    needs: list[str] = Field(default_factory=list)
    env: dict[str, Any] = Field(default_factory=dict)
    if_: str | bool | None = Field(default=None, alias="if")
    timeout: float | None = None
    resources: Resources = Field(default_factory=Resources)
    image: str | None = None
    outputs: dict[str, str] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)

    @field_validator("needs", mode="before")
    @classmethod
    def _needs_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)


def parse_duration(value: Any) -> float | None:
    """`90`, `90s`, `10m`, `2h` -> seconds."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return None if value is None else float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(value))
    if not match:
        raise ValueError(f"'{value}' is not a duration; expected seconds or a number with s, m or h (10m)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


class Schedule(Strict):
    cron: str


class Webhook(Strict):
    """A webhook trigger; `secret` (usually `${{ secrets.NAME }}`) is checked on every request."""

    secret: str
    path: str | None = None


class Triggers(Strict):
    schedule: list[Schedule] = Field(default_factory=list)
    webhook: Webhook | None = None
    manual: bool = True

    @model_validator(mode="before")
    @classmethod
    def _forms(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            out: dict[str, Any] = {"manual": False}
            for item in value:
                if item == "manual":
                    out["manual"] = True
                elif item in ("schedule", "webhook"):
                    raise ValueError(f"`{item}` needs settings: write it as a mapping (on: {{{item}: ...}})")
                else:
                    raise ValueError(f"unknown trigger '{item}'; triggers: schedule, webhook, manual")
            return out
        if isinstance(value, dict):
            value = dict(value)
            if isinstance(value.get("schedule"), (str, dict)):
                value["schedule"] = [value["schedule"]]
            if isinstance(value.get("schedule"), list):
                value["schedule"] = [{"cron": s} if isinstance(s, str) else s for s in value["schedule"]]
            if "manual" in value and value["manual"] is None:
                value["manual"] = True
        return value


class Flow(Strict):
    name: str
    on: Triggers = Field(default_factory=Triggers)
    env: dict[str, Any] = Field(default_factory=dict)
    jobs: dict[str, Job] = Field(min_length=1)

    @field_validator("name", mode="before")
    @classmethod
    def _name_text(cls, value: Any) -> Any:
        return _scalar_text(value)

    @field_validator("jobs")
    @classmethod
    def _job_ids(cls, jobs: dict[str, Job]) -> dict[str, Job]:
        for job_id in jobs:
            if not JOB_ID.match(job_id):
                raise ValueError(f"job id '{job_id}' must start with a letter or _ and contain only letters, "
                                 "digits, - and _")
        return jobs


# -- action-datatorch.yaml --------------------------------------------------------------------------

class ActionInput(Strict):
    type: Literal["string", "integer", "float", "boolean", "array"] = "string"
    required: bool = False
    default: Any = None
    description: str | None = None
    options: list[Any] | None = None


class ActionOutput(Strict):
    description: str | None = None


class Runs(Strict):
    """How the action runs: `docker` (an image or a Dockerfile), `python` (`main`), `shell`."""

    using: Literal["docker", "python", "shell"]
    image: str | None = None
    dockerfile: str | None = None
    main: str | None = None
    command: str | None = None
    script: str | None = None
    args: list[str] = Field(default_factory=list)
    entrypoint: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    python_install: Literal["auto", "system", "conda", "uv"] | None = None
    requirements: str | None = None

    @field_validator("entrypoint", mode="before")
    @classmethod
    def _entry_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("args", mode="before")
    @classmethod
    def _args_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        return [_scalar_text(v) for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _complete(self) -> Runs:
        if self.using == "docker" and bool(self.image) == bool(self.dockerfile):
            raise ValueError("runs.using: docker needs exactly one of `image` or `dockerfile`")
        if self.using == "python" and not self.main:
            raise ValueError("runs.using: python needs `main` (the script to run, e.g. main.py)")
        if self.using == "shell" and bool(self.command) == bool(self.script):
            raise ValueError("runs.using: shell needs exactly one of `command` or `script`")
        return self


class ActionManifest(Strict):
    name: str
    description: str | None = None
    author: str | None = None
    inputs: dict[str, ActionInput] = Field(default_factory=dict)
    outputs: dict[str, ActionOutput] = Field(default_factory=dict)
    runs: Runs

    @field_validator("outputs", mode="before")
    @classmethod
    def _outputs(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (v if isinstance(v, dict) else {"description": v}) for k, v in value.items()}
        return value

    @field_validator("inputs", mode="before")
    @classmethod
    def _inputs(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value
