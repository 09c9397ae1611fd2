"""The records a run leaves in the store. Secrets never enter them."""

from __future__ import annotations

import time
from enum import Enum

from pydantic import BaseModel, Field


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


class Transition(BaseModel):
    state: State
    at: float


class ArtifactRecord(BaseModel):
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


class JobRecord(BaseModel):
    id: str
    run: str
    workflow: str
    provider: str
    state: State = State.SUBMITTED
    history: list[Transition] = Field(default_factory=list)
    exit_code: int | None = None
    message: str | None = None
    image: str | None = None
    host: str | None = None
    container: str | None = None
    cache_key: str | None = None
    #: For a CACHED job: the job whose result (and stored artifacts) it reuses.
    cached_from: str | None = None
    needs: list[str] = Field(default_factory=list)
    deps: list[str] = Field(default_factory=list)
    artifacts: list[ArtifactRecord] = Field(default_factory=list)
    declared_artifacts: list[str] = Field(default_factory=list)
    #: `PORT_N -> http://host:port` where the client reaches the job's ports (while it runs)
    ports: dict[str, str] = Field(default_factory=dict)
    submitted_at: float = Field(default_factory=time.time)
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


class RunRecord(BaseModel):
    name: str
    repo: str
    workflow: str
    jobs: list[str] = Field(default_factory=list)
    variables: dict[str, str] = Field(default_factory=dict)
    args: list[str] = Field(default_factory=list)
    tag: str | None = None
    commit: str | None = None
    branch: str | None = None
    dirty: bool = False
    state: State = State.SUBMITTED
    exit_code: int | None = None
    submitted_at: float = Field(default_factory=time.time)
    finished_at: float | None = None
    host: str | None = None
    user: str | None = None


class TagRecord(BaseModel):
    """A name for the artifacts of a finished run (or of uploaded local data), reusable as a dep.

    `jobs` are the jobs whose artifacts the tag stands for, in the repository `repo` of the store.
    An upload has no run and no workflow: its one job holds the uploaded folders.
    """

    name: str
    repo: str
    run: str | None = None
    workflow: str | None = None
    jobs: list[str] = Field(default_factory=list)
    artifacts: list[str] = Field(default_factory=list)
    created_at: float = Field(default_factory=time.time)
    user: str | None = None
