"""The job manifest: everything the agent needs to run one job, written by the backend from a plan job.

A JSON object, given to the agent as the environment variable `DTRUN_AGENT_MANIFEST` (the JSON text)
or as a file (`python -m dtrun.agent --manifest PATH`). It never holds a secret's value: `secrets`
names variables the agent reads from its own environment (where the backend put them) and masks.

    {
      "version": 1,
      "store": "s3://bucket/prefix" | "/shared/folder",   # the store URL, as the client uses it
      "repo": "github.com/owner/name",                     # store namespace of the run
      "run": "brave-otter-1", "job": "3f2a...", "workflow": "train",
      "workspace": "/workspace",                           # where the code snapshot is unpacked
      "working_dir": "/workspace",                         # where the command runs
      "code": "repos/<repo>/code/<digest>.tar" | null,     # store path (relative to the store root)
      "inputs":  [{"tar": "<store path of an artifact tar>", "target": "/workspace/data"}],
      "restore": [{"tar": "...", "target": "..."}],        # outputs of a stopped job, before resume
      "command": ["python", "train.py"],                   # argv (entrypoint + command)
      "env": {"NAME": "value"},
      "secrets": ["HF_TOKEN"],
      "artifacts": [{"path": "out", "container_path": "/workspace/out", "mount": false}],
      "checkpoint_interval": 60,                           # seconds between `mount: true` saves
      "log_interval": 2,                                   # seconds between log uploads
      "stop_grace": 10                                     # SIGTERM -> SIGKILL of the command
    }

Store paths are relative to the store root, so the same manifest works whatever the root is mounted
as; the agent refuses any path with `..` or a leading `/`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

VERSION = 1


class ManifestError(ValueError):
    """The manifest is missing, not JSON, or has a field of the wrong shape (a backend bug)."""


@dataclass(frozen=True)
class Transfer:
    """A stored tar unpacked into the job before the command starts."""

    tar: str
    target: str


@dataclass(frozen=True)
class OutputArtifact:
    path: str
    container_path: str
    mount: bool = False
    #: The node of a multi-node job whose agent saves it (`artifacts: [{path, node}]`); 0 by default.
    node: int = 0
    #: Where the folder is when that is not `container_path` (one node's copy of a `node: all` artifact,
    #: saved as `<path>/node<N>`).
    source: str | None = None


@dataclass(frozen=True)
class JobManifest:
    store: str
    repo: str
    run: str
    job: str
    workflow: str
    command: list[str]
    workspace: str = "/workspace"
    working_dir: str = "/workspace"
    code: str | None = None
    inputs: list[Transfer] = field(default_factory=list)
    restore: list[Transfer] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    artifacts: list[OutputArtifact] = field(default_factory=list)
    checkpoint_interval: float = 60.0
    log_interval: float = 2.0
    stop_grace: float = 10.0
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> JobManifest:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ManifestError(f"the job manifest is not JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> JobManifest:
        if not isinstance(data, dict):
            raise ManifestError("the job manifest must be a JSON object")
        if data.get("version", VERSION) != VERSION:
            raise ManifestError(f"job manifest version {data.get('version')} is not {VERSION}: the image's "
                                "dtrun is older or newer than the client's")
        unknown = sorted(set(data) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise ManifestError(f"unknown field '{unknown[0]}' in the job manifest")
        for name in ("store", "repo", "run", "job", "workflow"):
            _expect(data, name, str, required=True)
        _expect(data, "command", list, required=True)
        if not data["command"] or not all(isinstance(a, str) for a in data["command"]):
            raise ManifestError("'command' must be a non-empty list of strings")
        for name in ("workspace", "working_dir"):
            _expect(data, name, str)
        _expect(data, "code", str, nullable=True)
        _expect(data, "env", dict)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.get("env", {}).items()):
            raise ManifestError("'env' must map names to strings")
        _expect(data, "secrets", list)
        for name in ("checkpoint_interval", "log_interval", "stop_grace"):
            _expect(data, name, (int, float))
        kwargs = dict(data)
        kwargs["inputs"] = [_transfer(t) for t in data.get("inputs", [])]
        kwargs["restore"] = [_transfer(t) for t in data.get("restore", [])]
        kwargs["artifacts"] = [_artifact(a) for a in data.get("artifacts", [])]
        for path in [kwargs.get("code"), *(t.tar for t in kwargs["inputs"] + kwargs["restore"])]:
            if path is not None:
                check_store_path(path)
        return cls(**kwargs)


def check_store_path(path: str) -> str:
    if not path or path.startswith("/") or ".." in path.split("/"):
        raise ManifestError(f"store path '{path}' must be relative to the store root, without '..'")
    return path


def _expect(data: dict[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = False,
            nullable: bool = False) -> None:
    if name not in data:
        if required:
            raise ManifestError(f"the job manifest has no '{name}'")
        return
    value = data[name]
    if value is None and nullable:
        return
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ManifestError(f"'{name}' in the job manifest has the wrong type ({type(value).__name__})")


def _transfer(item: Any) -> Transfer:
    if not isinstance(item, dict) or not isinstance(item.get("tar"), str) or not isinstance(item.get("target"), str):
        raise ManifestError(f"an input must be {{tar, target}}, not {item!r}")
    if not item["target"].startswith("/"):
        raise ManifestError(f"input target '{item['target']}' must be an absolute path")
    return Transfer(tar=item["tar"], target=item["target"])


def _artifact(item: Any) -> OutputArtifact:
    if not isinstance(item, dict) or not isinstance(item.get("path"), str) or \
            not isinstance(item.get("container_path"), str):
        raise ManifestError(f"an artifact must be {{path, container_path, mount, node}}, not {item!r}")
    node = item.get("node", 0)
    if not isinstance(node, int) or isinstance(node, bool) or node < 0:
        raise ManifestError(f"an artifact's node must be a node number, not {node!r}")
    source = item.get("source")
    if source is not None and not isinstance(source, str):
        raise ManifestError(f"an artifact's source must be a path, not {source!r}")
    return OutputArtifact(path=item["path"], container_path=item["container_path"], mount=bool(item.get("mount")),
                          node=node, source=source)
