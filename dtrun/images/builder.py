"""Choosing a builder that works against the daemon at hand, and running builds.

In order of preference: `docker buildx build --load`; a docker client that builds with BuildKit under
`DOCKER_BUILDKIT=1` (clients before 23.0 have BuildKit built in; later ones need buildx); the legacy
builder through the Engine API, with templates rendered without `RUN --mount`. Probing runs a few
`docker` subprocesses, so the verdict is cached per client binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

from dtrun.errors import BuildError
from dtrun.structs import struct

if TYPE_CHECKING:
    from dtrun.images.host import ImageHost

Output = Callable[[str], None]


@struct(frozen=True)
class Builder:
    """How to build: a docker CLI invocation (BuildKit), or the Engine API (legacy)."""

    name: str
    buildkit: bool
    argv: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return self.name


def _client_candidates() -> list[str]:
    seen: dict[str, str] = {}
    for folder in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin", "/usr/local/bin"]:
        path = Path(folder) / "docker"
        if path.is_file() and os.access(path, os.X_OK):
            seen.setdefault(str(path.resolve()), str(path))
    return list(seen.values())


def _probe_client(path: str) -> str | None:
    """'buildx', 'classic' (BuildKit built in) or None for a client that cannot build with BuildKit."""
    env = {**os.environ, "DOCKER_CLI_HINTS": "false"}
    try:
        buildx = subprocess.run([path, "buildx", "version"], capture_output=True, env=env, timeout=20)
        if buildx.returncode == 0:
            return "buildx"
        version = subprocess.run([path, "version", "--format", "{{.Client.Version}}"], capture_output=True,
                                 text=True, env=env, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    try:
        major = int(version.stdout.strip().split(".")[0])
    except ValueError:
        return None
    return "classic" if major < 23 else None


def _cached_probe(path: str) -> str | None:
    """What `_probe_client` said of this docker client binary (the same file: path, size, mtime)."""
    from dtrun.cachefile import cache_path, read_json, write_json

    cache_file = cache_path("docker-clients.json")
    stat = Path(path).stat()
    key = f"{Path(path).resolve()}:{stat.st_size}:{int(stat.st_mtime)}"
    cache = read_json(cache_file)
    if key not in cache:
        cache[key] = _probe_client(path)
        write_json(cache_file, cache)  # parallel jobs of one run probe at once: one temporary file each
    verdict = cache[key]
    return verdict if isinstance(verdict, str) else None


def pick_builder() -> Builder:
    forced = os.environ.get("DTRUN_BUILDER")
    verdicts = [(path, _cached_probe(path)) for path in _client_candidates()]
    if forced != "legacy":
        for path, verdict in verdicts:
            if verdict == "buildx":
                return Builder(f"docker buildx ({path})", True, (path, "buildx", "build", "--load"))
        for path, verdict in verdicts:
            if verdict == "classic":
                return Builder(f"BuildKit via {path}", True, (path, "build"), {"DOCKER_BUILDKIT": "1"})
    return Builder("legacy builder (Engine API, no BuildKit)", False)


_BUILDKIT_LINE = re.compile(r"^#(\d+) (.*)$")
_BUILDKIT_STEP = re.compile(r"^\[(?:[\w.-]+ )?\d+/\d+\] ")
_LEGACY_STEP = re.compile(r"^Step \d+/\d+ : ")
_NOISE = re.compile(r"--mount=\S+ |if \[ -f /run/secrets/dtrun-ca \]; then export [^;]*; fi; ")


def step_title(text: str) -> str:
    """A step as a person wants to read it: without the cache/secret mounts and the CA set-up."""
    return _NOISE.sub("", text)


class BuildLog:
    """Follows a build's output: which step runs now, and each step's own lines for the failure report.

    BuildKit's plain progress prefixes every line with `#N` (N a vertex) and names the vertex in its
    first line (`#7 [3/5] RUN pip install ...`); the legacy builder prints `Step 3/5 : RUN ...` and
    the step's output after it.
    """

    def __init__(self, step: Output | None = None) -> None:
        self.step = step
        self.titles: dict[str, str] = {}
        self.lines: dict[str, list[str]] = {}
        self.failed: str | None = None
        self.current: str | None = None
        self.tail: deque[str] = deque(maxlen=60)

    def feed(self, line: str) -> None:
        self.tail.append(line)
        match = _BUILDKIT_LINE.match(line)
        if match:
            vertex, text = match.groups()
            if vertex not in self.titles:
                self.titles[vertex] = text
                self.lines[vertex] = []
                if self.step and _BUILDKIT_STEP.match(text):
                    self.step(step_title(text))
            else:
                self.lines[vertex].append(text)
                if text.startswith("ERROR"):
                    self.failed = vertex
            return
        if _LEGACY_STEP.match(line):
            self.current = str(len(self.titles) + 1)
            self.titles[self.current] = line
            self.lines[self.current] = []
            if self.step:
                self.step(step_title(line))
        elif self.current is not None:
            self.lines[self.current].append(line)

    def failure(self) -> str:
        """The failing step and its log; the end of the whole log when no step stands out."""
        vertex = self.failed or (self.current if self.current in self.lines else None)
        if vertex is None:
            return "\n".join(self.tail)
        body = [step_title(line) for line in self.lines[vertex] if not line.startswith("sha256:")][-80:]
        return "\n".join([f"failing step: {step_title(self.titles[vertex])}", *("  " + line for line in body)])


def build(builder: Builder, host: ImageHost, *, dockerfile: str, context: dict[str, bytes], tag: str,
          labels: dict[str, str], build_args: dict[str, str], secrets: dict[str, Path],
          docker_host: str | None, output: Output, step: Output | None = None) -> None:
    """Build `tag`; on failure raise `BuildError` carrying the failing step's log."""
    with tempfile.TemporaryDirectory(prefix="dtrun-build-") as tmp:
        folder = Path(tmp)
        (folder / "Dockerfile").write_text(dockerfile)
        for name, data in context.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        log = BuildLog(step)

        def emit(line: str) -> None:
            log.feed(line)
            output(line)

        if builder.argv:
            argv = [*builder.argv, "--progress=plain", "-t", tag, "-f", str(folder / "Dockerfile")]
            for key, value in sorted(labels.items()):
                argv += ["--label", f"{key}={value}"]
            for key, value in sorted(build_args.items()):
                argv += ["--build-arg", f"{key}={value}"]
            for key, path in sorted(secrets.items()):
                argv += ["--secret", f"id={key},src={path}"]
            argv.append(str(folder))
            env = {**os.environ, **builder.env, "DOCKER_CLI_HINTS": "false"}
            if docker_host:
                env["DOCKER_HOST"] = docker_host
            code = _stream(argv, env, emit)
            if code != 0:
                raise BuildError(f"building {tag} failed (exit {code})\n{log.failure()}",
                                 hint="fix the failing step, then run again")
        else:
            _build_legacy(host, folder, tag, labels, build_args, emit, log)


def _stream(argv: list[str], env: dict[str, str], emit: Output) -> int:
    if not shutil.which(argv[0]):
        raise BuildError(f"{argv[0]} is not executable")
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, text=True, errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            emit(line.rstrip("\n"))
        return proc.wait()


def _build_legacy(host: ImageHost, folder: Path, tag: str, labels: dict[str, str], build_args: dict[str, str],
                  emit: Output, log: BuildLog) -> None:
    for chunk in host.legacy_build(folder, tag, labels, build_args):
        if "stream" in chunk:
            for line in str(chunk["stream"]).splitlines():
                emit(line)
        if "error" in chunk:
            raise BuildError(f"building {tag} failed: {str(chunk['error']).strip()}\n{log.failure()}",
                             hint="fix the failing step, then run again")
