"""Triggers: a schedule firing under an injected clock, and a webhook firing through `dtrun flow serve`."""

from __future__ import annotations

import hashlib
import hmac
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

from dtrun.api import Session
from dtrun.config import Settings
from dtrun.engine.events import OUTPUT, Event
from dtrun.flows.loader import LoadedFlow, load_flow
from dtrun.flows.triggers import Scheduler, schedules
from tests.conftest import BASE_IMAGE, BUSYBOX_IMAGE, DtrunRunner, write_files


def test_schedule_fires_under_an_injected_clock(tmp_path: Path, dtrun: DtrunRunner) -> None:
    write_files(tmp_path, {"flows/nightly.yaml": f"""
        name: nightly
        on:
          schedule:
            - cron: '0 10 * * *'
        jobs:
          tick:
            image: {BUSYBOX_IMAGE}
            steps:
              - run: echo "nightly ran"
        """})
    settings = Settings(store=str(dtrun.store), base_image=BASE_IMAGE)
    lines: list[str] = []

    def listen(event: Event) -> None:
        if event.kind == OUTPUT:
            lines.append(f"[{event.prefix}] {event.data.decode().rstrip()}")

    session = Session(tmp_path, settings=settings, listener=listen)
    loaded = load_flow(tmp_path / "flows/nightly.yaml")
    outcomes: list[tuple[str, bool]] = []

    def fire(flow: LoadedFlow, why: str) -> None:
        result, _ = session.flow_run(flow.path, trigger=why)
        outcomes.append((why, result.succeeded))

    now = [datetime(2026, 1, 1, 9, 58, 30)]
    stop = threading.Event()

    def sleep(seconds: float) -> None:  # time passes only when the scheduler waits
        now[0] += timedelta(seconds=seconds)
        if now[0] > datetime(2026, 1, 1, 10, 3):
            stop.set()

    scheduler = Scheduler(schedules([loaded]), fire, clock=lambda: now[0], sleep=sleep)
    scheduler.run(stop)
    assert outcomes == [("schedule 0 10 * * * at 2026-01-01 10:00", True)]
    assert lines == ["[tick/1] nightly ran"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_webhook_fires_through_flow_serve(tmp_path: Path, dtrun: DtrunRunner) -> None:
    write_files(tmp_path, {".dtrun/flows/on-push.yaml": f"""
        name: on-push
        on:
          webhook:
            secret: ${{{{ secrets.HOOK }}}}
        jobs:
          react:
            image: {BUSYBOX_IMAGE}
            steps:
              - run: echo "hook ran with secret ${{{{ secrets.HOOK }}}}"
        """})
    port = _free_port()
    secret = "a-long-shared-secret"
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", "flow", "serve", "--port", str(port), "--max-runs", "2"],
                            cwd=tmp_path, env={**dtrun.env, "DTRUN_SECRET_HOOK": secret}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/hooks/on-push"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                code = _post(url, b"{}", {"X-Dtrun-Token": "wrong"})
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "flow serve did not start listening"
                time.sleep(0.1)
        assert code == 401
        assert _post(url.replace("on-push", "nope"), b"{}", {"X-Dtrun-Token": secret}) == 404
        assert _post(url, b"{}", {"X-Dtrun-Token": secret}) == 202
        body = b'{"ref": "main"}'
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert _post(url, body, {"X-Hub-Signature-256": signature}) == 202
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.count("[react/1] hook ran with secret ***") == 2  # the secret is masked in the log
    assert secret not in out and secret not in err
    assert err.count("trigger: webhook /hooks/on-push -> flow on-push") == 2
