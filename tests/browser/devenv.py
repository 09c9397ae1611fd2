"""A dev-environment run as its user starts it: `dtrun run WORKFLOW` in the foreground, read until the
URL dtrun prints, and stopped with `dtrun stop` so its outputs are saved. Shared by the integration
tests (HTTP) and the browser tests (headless Chromium)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.conftest import DtrunRunner

URL_LINE = re.compile(r"^\s*(lab|notebook|code): (http://\S+)\s*$")
PORT_LINE = re.compile(r"^\s*PORT_\d+ \(\d+ in the job\) -> ")
PASSWORD_LINE = re.compile(r"^\s*code password: (\S+)\s*$")


def workflow_file(name: str, provider: str, extra: str = "") -> str:
    """A workflow file with one dev environment whose `out/` folder is saved."""
    return (f"workflows:\n  - name: {name}\n    provider: {provider}\n    python_install: system\n"
            f"    artifacts: [out]\n{extra}")


def http_status(url: str, timeout: float = 5) -> int:
    """The status of a GET, without following redirects (a login page is not the app)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class DevEnv:
    """`dtrun run` of one dev environment, in the background, its output collected line by line."""

    def __init__(self, dtrun: DtrunRunner, root: Path, workflow: str, *args: str) -> None:
        self.dtrun, self.root, self.workflow = dtrun, root, workflow
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "dtrun", "run", workflow, *args], cwd=root,
                                     env=dtrun.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.url_printed: float | None = None  # when dtrun printed the URL: the app answered
        self.port_printed: float | None = None  # when dtrun printed the app's port: its container had started
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if self.url_printed is None and URL_LINE.match(line):
                self.url_printed = time.monotonic()
            if self.url_printed is None and PORT_LINE.match(line):
                self.port_printed = time.monotonic()  # the last port printed is the app's
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def url(self, timeout: float = 1500) -> str:
        """The URL dtrun printed for the app (waits through an image build)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = URL_LINE.match(line)
                if found:
                    return found.group(2)
            if self.proc.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"dtrun run ended before printing a URL:\n{self.output}")
            time.sleep(0.1)
        raise AssertionError(f"no URL within {timeout}s:\n{self.output}")

    def password(self) -> str:
        found = [m.group(1) for m in map(PASSWORD_LINE.match, self.lines) if m]
        assert found, self.output
        return found[0]

    def wait_answers(self, url: str, timeout: float = 60) -> float:
        """Seconds from `dtrun run` until `url` answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if http_status(url, timeout=2) == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{url} did not answer 200 within {timeout}s:\n{self.output}")

    def runs(self) -> list[dict[str, Any]]:
        result = self.dtrun("status", "--json", cwd=self.root)
        assert result.code == 0, result.output
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def run_name(self) -> str:
        running = [r for r in self.runs() if r["state"] == "RUNNING"]
        assert running, self.runs()
        return str(running[0]["name"])

    def stop(self) -> dict[str, Any]:
        """`dtrun stop RUN`; the stopped job's record (its outputs saved)."""
        name = self.run_name()
        stopped = self.dtrun("stop", name, cwd=self.root)
        assert stopped.code == 0, stopped.output
        self.proc.wait(timeout=120)
        self._reader.join(timeout=10)
        run = next(r for r in self.runs() if r["name"] == name)
        return dict(run["jobs"][0])

    def __enter__(self) -> DevEnv:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
