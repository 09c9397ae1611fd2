"""Typed models of flow files and of `action-datatorch.yaml` (seed 004).

Strict like the workflow dialect: an unknown property is an error with a did-you-mean, because a
misspelt `needs` that is silently ignored runs jobs in the wrong order.
"""

from __future__ import annotations

import re
from dataclasses import field
from typing import Annotated, Any, Literal

from dtrun.spec.models import Resources
from dtrun.spec.typed import After, Alias, Before, MinLen, Model
from dtrun.structs import struct

JOB_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
INPUT_TYPES = ("string", "integer", "float", "boolean", "array", "list")
#: What `runs.using` may say. `node` and `human` exist in DataTorch but cannot run here (see `Runs`).
USING = ("python", "shell", "script", "cmd", "commandline", "docker")
_REFUSED_USING = {
    "node": "`node` is declared by DataTorch but its own runner never implemented it; "
            "rewrite the action with `using: python`, `shell` or `docker` (a node image)",
    "human": "`human` is a task for a person, created by the DataTorch server; it cannot run on "
             "a Docker host (DataTorch's own agent refuses it too)",
}
InputType = Literal["string", "integer", "float", "boolean", "array", "list"]


def _scalar_text(value: Any) -> Any:
    """Numbers and booleans written where text is meant stay text (`tag: 1.0`, `cron: 5`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return getattr(value, "raw", None) or str(value)
    return value


Text = Annotated[str, Before(_scalar_text)]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


@struct(frozen=True, kw_only=True)
class ActionObject(Model):
    """`action: {name, tag, git}`: an action in any git repository (seed 004)."""

    name: str
    tag: Text = "latest"
    git: str | None = None
    #: the manifest's file name in the repository (DataTorch: `action-datatorch.yaml` unless given)
    file: str | None = None


@struct(frozen=True, kw_only=True)
class Step(Model):
    id: str | None = None
    name: str | None = None
    action: str | ActionObject | None = None
    run: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    if_: Annotated[str | bool | None, Alias("if")] = None
    #: overrides the action's own `cache:` (DataTorch: the step has the last word)
    cache: bool | None = None

    def check(self) -> None:
        if self.action is None and self.run is None:
            raise ValueError("a step needs an `action` (e.g. dtrun/shell) or a `run` command")
        if self.action is not None and self.run is not None:
            raise ValueError("a step has either an `action` or a `run` command, not both")
        if self.run is not None and self.inputs:
            raise ValueError("`inputs` belong to an `action`; a `run` step reads `env`")
        if self.run is not None and self.cache is not None:
            raise ValueError("`cache` belongs to an `action` step (it reuses an action's outputs); a `run` step "
                             "is reused only with its whole job (`cache: true` on the job)")
        if self.id is not None and not JOB_ID.match(self.id):
            raise ValueError(f"step id '{self.id}' must start with a letter or _ and contain only "
                             "letters, digits, - and _")


def parse_duration(value: Any) -> float | None:
    """`90`, `90s`, `10m`, `2h` -> seconds."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return None if value is None else float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(value))
    if not match:
        raise ValueError(f"'{value}' is not a duration; expected seconds or a number with s, m or h (10m)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


@struct(frozen=True, kw_only=True)
class Job(Model):
    name: str | None = None
    needs: Annotated[list[str], Before(_one_or_many)] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=dict)
    if_: Annotated[str | bool | None, Alias("if")] = None
    timeout: Annotated[float | None, Before(parse_duration)] = None
    resources: Resources = field(default_factory=Resources)
    image: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    #: the job cache: true reuses an earlier result when nothing it depends on changed (the job is
    #: deterministic); false always runs it; unset: reused when every step is an action with caching on
    cache: bool | None = None
    steps: Annotated[list[Step], MinLen(1)]


@struct(frozen=True, kw_only=True)
class Schedule(Model):
    cron: str


@struct(frozen=True, kw_only=True)
class Webhook(Model):
    """A webhook trigger; `secret` (usually `${{ secrets.NAME }}`) is checked on every request."""

    secret: str
    path: str | None = None


@struct(frozen=True, kw_only=True)
class Triggers(Model):
    schedule: list[Schedule] = field(default_factory=list)
    webhook: Webhook | None = None
    manual: bool = True

    @classmethod
    def prepare(cls, value: Any) -> Any:
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


def _job_ids(jobs: dict[str, Job]) -> dict[str, Job]:
    for job_id in jobs:
        if not JOB_ID.match(job_id):
            raise ValueError(f"job id '{job_id}' must start with a letter or _ and contain only letters, "
                             "digits, - and _")
    return jobs


@struct(frozen=True, kw_only=True)
class Flow(Model):
    name: Text
    on: Triggers = field(default_factory=Triggers)
    env: dict[str, Any] = field(default_factory=dict)
    jobs: Annotated[dict[str, Job], MinLen(1), After(_job_ids)]


# -- action-datatorch.yaml --------------------------------------------------------------------------

@struct(frozen=True, kw_only=True)
class ActionInput(Model):
    """One `inputs.<id>` of a manifest; `default` may hold `${{ }}` (rendered when the step runs)."""

    type: InputType = "string"
    required: bool = False
    default: Any = None
    description: str | None = None
    options: list[Any] | None = None
    #: a hint for editors and `dtrun action show` that the value spans lines; it never changes the value
    multiline: bool = False
    #: printed as a warning whenever a step gives this input
    deprecation_message: Annotated[str | None, Alias("deprecationMessage")] = None


@struct(frozen=True, kw_only=True)
class ActionOutput(Model):
    """One `outputs.<id>`; a declared `type` turns a text value (from $DTRUN_OUTPUT) into that type."""

    type: Literal["string", "integer", "float", "boolean", "array", "list", "object"] | None = None
    description: str | None = None


@struct(frozen=True, kw_only=True)
class ActionEnv(Model):
    """One `env.<NAME>` of a manifest: a name the action reads. The value comes from `--secret NAME=...`
    or the host's environment when the step runs, never from the file (it would be published)."""

    description: str | None = None


def _using(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in _REFUSED_USING:
        raise ValueError(_REFUSED_USING[value.strip().lower()])
    if isinstance(value, str) and value.strip().lower() not in USING:
        raise ValueError(f"'{value}' is not known; use one of {', '.join(USING)}")
    return value.strip().lower() if isinstance(value, str) else value


def _texts(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    return [_scalar_text(v) for v in value] if isinstance(value, list) else value


@struct(frozen=True, kw_only=True)
class Runs(Model):
    """How the action runs (DataTorch's `runs.using`):

    `python` runs `main` as `python <main> '<inputs JSON>'`; `shell` and `script` run the file `script`
    (arguments may follow its path), or dtrun's `command`; `cmd`/`commandline` run `command` with `sh -c`;
    `docker` runs `image` (or builds `dockerfile`). Every kind also gets its inputs as `INPUT_*`.
    """

    using: Annotated[Literal["python", "shell", "script", "cmd", "commandline", "docker"], Before(_using)]
    image: str | None = None
    dockerfile: str | None = None
    main: str | None = None
    command: str | None = None
    script: str | None = None
    args: Annotated[list[str], Before(_texts)] = field(default_factory=list)
    entrypoint: Annotated[list[str] | None, Before(_one_or_many)] = None
    env: dict[str, str] = field(default_factory=dict)
    python_install: Literal["auto", "system", "conda", "uv"] | None = None
    requirements: str | None = None

    def check(self) -> None:
        using = self.using
        if using == "docker" and bool(self.image) == bool(self.dockerfile):
            raise ValueError("runs.using: docker needs exactly one of `image` or `dockerfile`")
        if using == "python" and not self.main:
            raise ValueError("runs.using: python needs `main` (the script to run, e.g. main.py)")
        if using == "shell" and bool(self.command) == bool(self.script):
            raise ValueError("runs.using: shell needs exactly one of `script` (a file of the action) or `command`")
        if using == "script" and not self.script:
            raise ValueError("runs.using: script needs `script` (a file of the action, e.g. run.sh)")
        if self.script:
            import shlex

            try:
                shlex.split(self.script)
            except ValueError as exc:
                raise ValueError(f"cannot read `script: {self.script}` as a path and arguments: {exc}") from None
        if using in ("cmd", "commandline") and not self.command:
            raise ValueError(f"runs.using: {using} needs `command` (run with sh -c)")


def _output_forms(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (v if isinstance(v, dict) else {"description": v}) for k, v in value.items()}
    return value


def _env_forms(value: Any) -> Any:
    """`NAME: description`, `NAME:` or `NAME: {description}`; a `value` is refused (it would be published)."""
    if isinstance(value, list):
        value = {str(v): None for v in value}
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(item, dict) and "value" in item:
                raise ValueError(f"env '{key}': a manifest names the variables an action reads, never their "
                                 f"values; pass it with `--secret {key}=...` or export {key} on the host")
            out[key] = {"description": None if item is None else str(item)} if not isinstance(item, dict) \
                else item
        return out
    return value


def _input_forms(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ({} if v is None else v) for k, v in value.items()}
    return value


@struct(frozen=True, kw_only=True)
class ActionManifest(Model):
    """`action-datatorch.yaml` as DataTorch defines it (its action.v1 schema), plus dtrun's `runs` extras."""

    schema_: Annotated[str | None, Alias("$schema")] = None
    name: Text
    description: str | None = None
    author: str | None = None
    #: reuse the outputs of an earlier run with the same action and inputs; a step's `cache:` overrides it
    cache: bool = False
    env: Annotated[dict[str, ActionEnv], Before(_env_forms)] = field(default_factory=dict)
    inputs: Annotated[dict[str, ActionInput], Before(_input_forms)] = field(default_factory=dict)
    outputs: Annotated[dict[str, ActionOutput], Before(_output_forms)] = field(default_factory=dict)
    runs: Runs
