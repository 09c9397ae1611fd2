"""One job, run by the agent inside the container: prepare, run, stream, save, record.

The status the client reads is `jobs/<job>/agent.json`:

    {"version": 1, "state": "starting" | "running" | "saving" | "exited", "attempt": 0,
     "host": "node1", "slurm_job_id": "42", "gpus": "0", "started_at": 1.0, "finished_at": null,
     "exit_code": null, "stopped": false, "artifacts": [<ArtifactRecord as JSON>], "refused": [],
     "message": null}

`exit_code` is the command's (128 + N when a signal N ended it; 125 when the agent could not start
it, with `message` saying why). `stopped` is true when the agent was asked to stop (SIGTERM/SIGINT):
it forwarded the signal to the command, gave it `stop_grace` seconds, then saved the outputs.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from dtrun.agent import formats
from dtrun.agent.logs import LogWriter
from dtrun.agent.manifest import JobManifest
from dtrun.agent.storeio import AgentStore
from dtrun.masking import Masker

#: The agent could not start the command (store unreachable, a secret missing, command not found).
CANNOT_START = 125
#: Settings of the store: the agent needs them, the job's command does not (Docker jobs never get them).
STORE_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
             "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE")
_STORE_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
AGENT_ENV = ("DTRUN_AGENT_MANIFEST",)


class Agent:
    def __init__(self, manifest: JobManifest, environ: dict[str, str] | None = None,
                 echo: IO[bytes] | None = None) -> None:
        self.m = manifest
        self.environ = dict(os.environ if environ is None else environ)
        self.echo = echo
        self.store = AgentStore(manifest.store, manifest.repo, manifest.job)
        self.status: dict[str, Any] = {
            "version": 1, "state": "starting", "attempt": _attempt(self.environ), "host": socket.gethostname(),
            "slurm_job_id": self.environ.get("SLURM_JOB_ID"), "gpus": self.environ.get("CUDA_VISIBLE_DEVICES"),
            "started_at": time.time(), "finished_at": None, "exit_code": None, "stopped": False,
            "artifacts": [], "refused": [], "message": None}
        #: A multi-node job's node (torchrun's `PET_NODE_RANK`, set by the backend): node 0 is the job's
        #: record (log, status, outputs); every other node keeps its own log and status beside it.
        self.node = _node_rank(self.environ)
        self._stop = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    # -- entry ---------------------------------------------------------------------------------------
    def run(self) -> int:
        """Run the job to its end; the return value is the agent's exit code (the command's)."""
        self._install_signals()
        secrets = self._secret_values()
        masker = Masker([*secrets.values(), *(self.environ[n] for n in _STORE_SECRETS if self.environ.get(n))])
        work = Path(tempfile.mkdtemp(prefix="dtrun-agent-"))
        log = LogWriter(str(self._local_log(work)), masker, self.echo)
        uploader = _Repeat(self.m.log_interval, lambda: self._upload_log(log))
        try:
            self._record()
            missing = [n for n in self.m.secrets if n not in secrets]
            if missing:
                return self._cannot_start(f"the secret {missing[0]} is not in the job's environment", log)
            try:
                self._prepare()
            except (OSError, formats.UnsafeArchive) as exc:
                return self._cannot_start(f"cannot prepare the job: {exc}", log)
            if self._stop.is_set():
                self.status["stopped"] = True
                return self._finish(128 + signal.SIGTERM, log)
            try:
                child = self._start(secrets)
            except OSError as exc:
                log.feed(f"dtrun agent: cannot run {self.m.command[0]}: {exc.strerror or exc}\n".encode())
                return self._cannot_start(f"cannot run {self.m.command[0]}: {exc.strerror or exc}", log)
            self.status["state"] = "running"
            self._record()
            uploader.start()
            checkpoints = _Repeat(self.m.checkpoint_interval, self._checkpoint)
            if any(a.mount and a.node == self.node for a in self.m.artifacts):
                checkpoints.start()
            assert child.stdout is not None
            while chunk := _read(child.stdout):
                log.feed(chunk)
            code = child.wait()
            checkpoints.stop()
            return self._finish(128 - code if code < 0 else code, log)
        finally:
            uploader.stop()
            with contextlib.suppress(ValueError):
                log.close()
            self._upload_log(log, force=True)
            import shutil

            shutil.rmtree(work, ignore_errors=True)

    # -- steps ---------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Code, then dep artifacts (read-only for the job), then what a stopped job saved, then this
        job's own checkpoints from an earlier attempt (a requeued job continues where it was)."""
        workspace = Path(self.m.workspace)
        workspace.mkdir(parents=True, exist_ok=True)
        if self.m.code:
            self.store.unpack(self.store.path(self.m.code), workspace)
        for item in self.m.inputs:
            self.store.unpack(self.store.path(item.tar), Path(item.target))
            _read_only(Path(item.target))
        for item in self.m.restore:
            self.store.unpack(self.store.path(item.tar), Path(item.target))
        for art in self.m.artifacts:
            saved = self.store.saved_artifact(art.path) if art.mount else None
            if saved:
                tar = self.store.job_path("artifacts", formats.tar_name(saved["key"], saved["digest"]))
                self.store.unpack(tar, Path(art.container_path))
        Path(self.m.working_dir).mkdir(parents=True, exist_ok=True)

    def _start(self, secrets: dict[str, str]) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in self.environ.items() if k not in STORE_ENV and k not in AGENT_ENV}
        env.update({k: _bind(v, secrets) for k, v in self.m.env.items()})
        env.update(secrets)
        command = [_bind(word, secrets) for word in self.m.command]
        with self._lock:
            self._child = subprocess.Popen(command, cwd=self.m.working_dir, env=env, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        return self._child

    def _finish(self, code: int, log: LogWriter) -> int:
        self.status.update(state="saving", exit_code=code)
        self._record()
        for art in [a for a in self.m.artifacts if a.node == self.node]:  # node 0's unless one says otherwise
            try:
                saved = self.store.save_artifact(Path(art.source or art.container_path), art.path, art.container_path)
            except (formats.UnsafeArchive, formats.NotAFolder) as exc:
                self.status["refused"].append(f"artifact {art.path}: {exc.message}")
                continue
            except OSError as exc:
                self.status["refused"].append(f"artifact {art.path}: not saved: {exc}")
                continue
            if saved is not None:
                self.status["artifacts"].append(saved)
        self.status.update(state="exited", finished_at=time.time(), stopped=self.status["stopped"] or
                           self._stop.is_set())
        self._record()
        return code

    def _cannot_start(self, message: str, log: LogWriter) -> int:
        self._say(message)
        self.status["message"] = message
        self.status["stopped"] = self._stop.is_set()
        return self._finish(CANNOT_START, log)

    def _checkpoint(self) -> None:
        for art in self.m.artifacts:
            if art.mount and art.node == self.node and not self._stop.is_set():
                try:
                    self.store.save_artifact(Path(art.source or art.container_path), art.path, art.container_path)
                except Exception as exc:  # a failed checkpoint (a file changing under us) must not end the job
                    self._say(f"checkpoint of {art.path} failed: {exc}")

    # -- signals -------------------------------------------------------------------------------------
    def _install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        """Forward to the command's process group; SIGKILL it if it is still there after the grace."""
        first = not self._stop.is_set()
        self._stop.set()
        with self._lock:
            child = self._child
        if child is None or child.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signum)
        if first:
            threading.Thread(target=self._kill_after_grace, args=(child,), daemon=True).start()

    def _kill_after_grace(self, child: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(self.m.stop_grace)
            return
        self._say(f"the command did not end {self.m.stop_grace:g}s after SIGTERM: killing it")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)

    # -- records -------------------------------------------------------------------------------------
    def _record(self) -> None:
        try:
            self.store.write_json(self.store.job_path(formats.per_node(formats.STATUS_FILE, self.node)), self.status)
        except Exception as exc:  # the store is down: the job goes on; the final record is retried
            self._say(f"cannot record the job's status in the store: {exc}")

    def _local_log(self, work: Path) -> Path:
        """The local log file, continuing the stored one (a requeued job's attempts share one log)."""
        path = work / formats.LOG_FILE
        stored = self.store.job_path(formats.per_node(formats.LOG_FILE, self.node))
        with contextlib.suppress(Exception):
            if self.store.exists(stored):
                self.store.download(stored, str(path))
        path.touch()
        return path

    def _upload_log(self, log: LogWriter, force: bool = False) -> None:
        version = log.version
        if not force and version == getattr(self, "_uploaded", -1):
            return
        try:
            self.store.upload(log.path, self.store.job_path(formats.per_node(formats.LOG_FILE, self.node)))
            self._uploaded = version
        except Exception as exc:
            self._say(f"cannot upload the log: {exc}")

    def _secret_values(self) -> dict[str, str]:
        return {n: self.environ[n] for n in self.m.secrets if n in self.environ}

    def _say(self, message: str) -> None:
        print(f"dtrun agent: {message}", file=sys.stderr, flush=True)


class _Repeat:
    """Calls `action` every `every` seconds in a thread until stopped (then waits for the last call)."""

    def __init__(self, every: float, action: Any) -> None:
        self.every, self.action = max(0.1, every), action
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.action()


#: `${{ secrets.NAME }}` in the command or env (as `dtrun.spec.templating` writes it): replaced here, in
#: the job, so the value never is in the manifest or the scheduler's copy of the job.
_SECRET_MARK = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def _bind(text: str, secrets: dict[str, str]) -> str:
    return _SECRET_MARK.sub(lambda m: secrets.get(m.group(1), m.group(0)), text)


def _read(stream: IO[bytes]) -> bytes:
    """The next chunk of the command's output (as soon as any arrives), b"" at its end."""
    return os.read(stream.fileno(), 1 << 16)


def _read_only(folder: Path) -> None:
    """Dep artifacts are read-only in the job, as the Docker backend mounts them."""
    for dirpath, _dirnames, filenames in os.walk(folder):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode & ~0o222)


def _attempt(environ: dict[str, str]) -> int:
    """Which attempt of the job this is: Slurm counts requeues in SLURM_RESTART_COUNT."""
    try:
        return int(environ.get("SLURM_RESTART_COUNT") or environ.get("DTRUN_AGENT_ATTEMPT") or 0)
    except ValueError:
        return 0


def _node_rank(environ: dict[str, str]) -> int:
    try:
        return max(int(environ.get("PET_NODE_RANK") or 0), 0)
    except ValueError:
        return 0
