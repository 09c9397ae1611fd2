"""The records a run leaves in the store. Secrets never enter them.

Plain dataclasses, each with an explicit reader (`from_dict`) and writer (`to_dict`) of its JSON, not
validation-library models: `dtrun status` and a cache hit read these records and should not pay for
importing one (issue 19). The readers accept what stores written by earlier dtrun versions hold: unknown
keys are ignored and a missing optional key takes its default; a missing required key or a value of the
wrong type raises `RecordError` (a ValueError), which the store reports as a damaged record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import field
from enum import Enum
from typing import Any, TypeVar

from dtrun.structs import struct


class State(str, Enum):
    SUBMITTED = "SUBMITTED"
    BUILDING = "BUILDING"
    RUNNING = "RUNNING"
    UPLOADING = "UPLOADING"
    DONE = "DONE"
    FAILED = "FAILED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    ABORTING = "ABORTING"
    ABORTED = "ABORTED"
    CACHED = "CACHED"
    #: not run, and not a failure: a flow job whose `if` is false, or that needs one that did not succeed
    SKIPPED = "SKIPPED"

    @property
    def finished(self) -> bool:
        return self in FINISHED

    @property
    def succeeded(self) -> bool:
        return self in (State.DONE, State.CACHED)


FINISHED = frozenset({State.DONE, State.FAILED, State.STOPPED, State.ABORTED, State.CACHED, State.SKIPPED})


class RecordError(ValueError):
    """JSON that is not the record it should be; the message names the record kind and the field."""


@struct
class Transition:
    state: State
    at: float

    @classmethod
    def from_dict(cls, data: Any) -> Transition:
        fields = _Fields(data, "Transition")
        return cls(state=fields.state("state"), at=fields.number("at"))

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state.value, "at": self.at}


@struct
class ArtifactRecord:
    """One saved output folder (or single file): `path` as declared, stored as one tar object plus a manifest."""

    path: str
    container_path: str
    key: str
    digest: str
    files: int
    size: int
    #: The job turned the declared path into one regular file: the tar holds just it, named as the file,
    #: and it is restored and downloaded as that file (not as a folder).
    file: bool = False

    @property
    def restore_at(self) -> str:
        """Where its tar is extracted in a job: the folder itself, or the folder holding the file."""
        import posixpath

        return (posixpath.dirname(self.container_path) or "/") if self.file else self.container_path

    @classmethod
    def from_dict(cls, data: Any) -> ArtifactRecord:
        f = _Fields(data, "ArtifactRecord")
        return cls(path=f.text("path"), container_path=f.text("container_path"), key=f.text("key"),
                   digest=f.text("digest"), files=f.integer("files"), size=f.integer("size"),
                   file=f.flag("file", False))

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "container_path": self.container_path, "key": self.key, "digest": self.digest,
                "files": self.files, "size": self.size, "file": self.file}


@struct
class JobRecord:
    id: str
    run: str
    workflow: str
    provider: str
    state: State = State.SUBMITTED
    history: list[Transition] = field(default_factory=list)
    exit_code: int | None = None
    message: str | None = None
    image: str | None = None
    host: str | None = None
    container: str | None = None
    cache_key: str | None = None
    #: For a CACHED job: the job whose result (and stored artifacts) it reuses.
    cached_from: str | None = None
    needs: list[str] = field(default_factory=list)
    deps: list[str] = field(default_factory=list)
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    declared_artifacts: list[str] = field(default_factory=list)
    #: `PORT_N -> http://host:port` where the client reaches the job's ports (while it runs)
    ports: dict[str, str] = field(default_factory=dict)
    submitted_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def output_id(self) -> str:
        """The job whose folder in the store holds this job's logs and artifacts: a CACHED job's are
        those of the job it reuses."""
        return self.cached_from or self.id

    def move(self, state: State, message: str | None = None) -> None:
        self.state = state
        now = time.time()
        self.history.append(Transition(state=state, at=now))
        if message:
            self.message = message
        if state.finished:
            self.finished_at = now

    @classmethod
    def from_dict(cls, data: Any) -> JobRecord:
        f = _Fields(data, "JobRecord")
        return cls(id=f.text("id"), run=f.text("run"), workflow=f.text("workflow"), provider=f.text("provider"),
                   state=f.state("state", State.SUBMITTED), history=f.records("history", Transition.from_dict),
                   exit_code=f.optional_integer("exit_code"), message=f.optional_text("message"),
                   image=f.optional_text("image"), host=f.optional_text("host"),
                   container=f.optional_text("container"), cache_key=f.optional_text("cache_key"),
                   cached_from=f.optional_text("cached_from"), needs=f.texts("needs"), deps=f.texts("deps"),
                   artifacts=f.records("artifacts", ArtifactRecord.from_dict),
                   declared_artifacts=f.texts("declared_artifacts"), ports=f.mapping("ports"),
                   submitted_at=f.number("submitted_at", time.time), finished_at=f.optional_number("finished_at"))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "run": self.run, "workflow": self.workflow, "provider": self.provider,
                "state": self.state.value, "history": [t.to_dict() for t in self.history],
                "exit_code": self.exit_code, "message": self.message, "image": self.image, "host": self.host,
                "container": self.container, "cache_key": self.cache_key, "cached_from": self.cached_from,
                "needs": list(self.needs), "deps": list(self.deps),
                "artifacts": [a.to_dict() for a in self.artifacts],
                "declared_artifacts": list(self.declared_artifacts), "ports": dict(self.ports),
                "submitted_at": self.submitted_at, "finished_at": self.finished_at}


@struct
class RunRecord:
    name: str
    repo: str
    workflow: str
    jobs: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    tag: str | None = None
    commit: str | None = None
    branch: str | None = None
    dirty: bool = False
    state: State = State.SUBMITTED
    exit_code: int | None = None
    submitted_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    host: str | None = None
    user: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        f = _Fields(data, "RunRecord")
        return cls(name=f.text("name"), repo=f.text("repo"), workflow=f.text("workflow"), jobs=f.texts("jobs"),
                   variables=f.mapping("variables"), args=f.texts("args"), tag=f.optional_text("tag"),
                   commit=f.optional_text("commit"), branch=f.optional_text("branch"), dirty=f.flag("dirty", False),
                   state=f.state("state", State.SUBMITTED), exit_code=f.optional_integer("exit_code"),
                   submitted_at=f.number("submitted_at", time.time), finished_at=f.optional_number("finished_at"),
                   host=f.optional_text("host"), user=f.optional_text("user"))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "repo": self.repo, "workflow": self.workflow, "jobs": list(self.jobs),
                "variables": dict(self.variables), "args": list(self.args), "tag": self.tag, "commit": self.commit,
                "branch": self.branch, "dirty": self.dirty, "state": self.state.value, "exit_code": self.exit_code,
                "submitted_at": self.submitted_at, "finished_at": self.finished_at, "host": self.host,
                "user": self.user}


@struct
class TagRecord:
    """A name for the artifacts of a finished run (or of uploaded local data), reusable as a dep.

    `jobs` are the jobs whose artifacts the tag stands for, in the repository `repo` of the store.
    An upload has no run and no workflow: its one job holds the uploaded folders.
    """

    name: str
    repo: str
    run: str | None = None
    workflow: str | None = None
    jobs: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    user: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> TagRecord:
        f = _Fields(data, "TagRecord")
        return cls(name=f.text("name"), repo=f.text("repo"), run=f.optional_text("run"),
                   workflow=f.optional_text("workflow"), jobs=f.texts("jobs"), artifacts=f.texts("artifacts"),
                   created_at=f.number("created_at", time.time), user=f.optional_text("user"))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "repo": self.repo, "run": self.run, "workflow": self.workflow,
                "jobs": list(self.jobs), "artifacts": list(self.artifacts), "created_at": self.created_at,
                "user": self.user}


# -- reading JSON values -------------------------------------------------------------------------------

T = TypeVar("T")
_REQUIRED: Any = object()


class _Fields:
    """Typed access to one JSON object's keys, for one record kind: each getter returns the value when
    it has the expected type, the default when the key is absent (or the key is required and the
    record is refused), and raises `RecordError` naming the kind, key and what was found otherwise."""

    def __init__(self, data: Any, kind: str) -> None:
        if not isinstance(data, Mapping):
            raise RecordError(f"{kind}: expected a JSON object, got {_describe(data)}")
        self.data, self.kind = data, kind

    def _get(self, key: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            raise RecordError(f"{self.kind}: the field '{key}' is missing")
        return default() if callable(default) else default

    def _wrong(self, key: str, expected: str, value: Any) -> RecordError:
        return RecordError(f"{self.kind}: the field '{key}' should be {expected}, got {_describe(value)}")

    def text(self, key: str) -> str:
        value = self._get(key, _REQUIRED)
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        return value

    def optional_text(self, key: str) -> str | None:
        value = self._get(key, None)
        if value is not None and not isinstance(value, str):
            raise self._wrong(key, "a string or null", value)
        return value

    def number(self, key: str, default: Any = _REQUIRED) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._wrong(key, "a number", value)
        return float(value)

    def optional_number(self, key: str) -> float | None:
        return None if self._get(key, None) is None else self.number(key)

    def integer(self, key: str) -> int:
        value = self._get(key, _REQUIRED)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, "an integer", value)
        return value

    def optional_integer(self, key: str) -> int | None:
        return None if self._get(key, None) is None else self.integer(key)

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self._wrong(key, "true or false", value)
        return value

    def state(self, key: str, default: Any = _REQUIRED) -> State:
        value = self._get(key, default)
        if isinstance(value, State):
            return value
        try:
            return State(value)
        except ValueError:
            raise self._wrong(key, "one of " + ", ".join(s.value for s in State), value) from None

    def texts(self, key: str) -> list[str]:
        value = self._get(key, list)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._wrong(key, "a list of strings", value)
        return list(value)

    def mapping(self, key: str) -> dict[str, str]:
        value = self._get(key, dict)
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            raise self._wrong(key, "an object of strings", value)
        return dict(value)

    def records(self, key: str, read: Callable[[Any], T]) -> list[T]:
        value = self._get(key, list)
        if not isinstance(value, list):
            raise self._wrong(key, "a list", value)
        try:
            return [read(v) for v in value]
        except RecordError as exc:
            raise RecordError(f"{self.kind}: in the field '{key}': {exc}") from None


def _describe(value: Any) -> str:
    shown = repr(value)
    return f"{type(value).__name__} {shown if len(shown) <= 40 else shown[:37] + '...'}"
