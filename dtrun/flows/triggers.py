"""Triggers (seed 004: "on a schedule, or from an external event"): `on.schedule` cron entries, checked
once per minute against an injectable clock, and `on.webhook`, a small HTTP server on loopback that
starts a flow when a request carries the flow's shared secret (as a token header or an HMAC of the body).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dtrun.errors import DtrunError
from dtrun.flows.cron import Cron, parse_cron
from dtrun.flows.expressions import Scope, render, text_of
from dtrun.flows.loader import LoadedFlow
from dtrun.structs import struct

TOKEN_HEADER = "X-Dtrun-Token"
SIGNATURE_HEADER = "X-Hub-Signature-256"
Fire = Callable[[LoadedFlow, str], None]


@struct(frozen=True)
class Scheduled:
    loaded: LoadedFlow
    cron: Cron


def schedules(flows: list[LoadedFlow]) -> list[Scheduled]:
    out = []
    for loaded in flows:
        for i, entry in enumerate(loaded.flow.on.schedule):
            try:
                out.append(Scheduled(loaded, parse_cron(entry.cron)))
            except DtrunError as exc:
                raise type(exc)(exc.message, position=loaded.position("on", "schedule", i, "cron"),
                                hint=exc.hint) from None
    return out


class Scheduler:
    """Fires every schedule whose minute has come, once, between one check and the next.

    `clock` and `sleep` are injectable so tests (and a simulation) can move time without waiting.
    """

    def __init__(self, entries: list[Scheduled], fire: Fire, *, clock: Callable[[], datetime] = datetime.now,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.entries = entries
        self.fire = fire
        self.clock = clock
        self.sleep = sleep
        self._last = self._minute(clock())

    @staticmethod
    def _minute(when: datetime) -> datetime:
        return when.replace(second=0, microsecond=0)

    def tick(self) -> list[tuple[str, datetime]]:
        """Fire what is due in the minutes after the last check up to now; returns (flow, minute) fired."""
        now = self._minute(self.clock())
        fired: list[tuple[str, datetime]] = []
        minute = self._last + timedelta(minutes=1)
        # After a long pause (a suspended laptop) fire at most the last day's worth, not a backlog of years.
        minute = max(minute, now - timedelta(days=1))
        while minute <= now:
            for entry in self.entries:
                if entry.cron.matches(minute):
                    self.fire(entry.loaded, f"schedule {entry.cron.text} at {minute:%Y-%m-%d %H:%M}")
                    fired.append((entry.loaded.flow.name, minute))
            minute += timedelta(minutes=1)
        self._last = max(self._last, now)
        return fired

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.tick()
            now = self.clock()
            self.sleep(max(0.5, 60 - now.second - now.microsecond / 1e6))


@struct(frozen=True)
class Hook:
    loaded: LoadedFlow
    path: str
    secret: str


def webhooks(flows: list[LoadedFlow], secrets: dict[str, str]) -> list[Hook]:
    hooks: list[Hook] = []
    for loaded in flows:
        hook = loaded.flow.on.webhook
        if hook is None:
            continue
        secret = text_of(render(hook.secret, Scope(secrets=secrets)))
        if len(secret) < 8:
            raise DtrunError(f"flow '{loaded.flow.name}': the webhook secret is empty or shorter than 8 characters",
                             position=loaded.position("on", "webhook", "secret"),
                             hint="use `secret: ${{ secrets.NAME }}` and pass the value with "
                             "DTRUN_SECRET_NAME or --secret NAME")
        slug = hook.path or re.sub(r"[^A-Za-z0-9_.-]+", "-", loaded.path.stem).strip("-")
        path = "/hooks/" + slug.strip("/")
        if any(h.path == path for h in hooks):
            raise DtrunError(f"two flows use the webhook path {path}",
                             position=loaded.position("on", "webhook"), hint="set `on.webhook.path` on one")
        hooks.append(Hook(loaded, path, secret))
    return hooks


def authorized(hook: Hook, headers: Any, body: bytes) -> bool:
    token = headers.get(TOKEN_HEADER)
    if token is not None:
        return hmac.compare_digest(token.encode(), hook.secret.encode())
    signature = headers.get(SIGNATURE_HEADER)
    if signature is not None and signature.startswith("sha256="):
        expected = hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature[len("sha256="):].encode(), expected.encode())
    return False


def make_server(hooks: list[Hook], fire: Fire, *, bind: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    table = {h.path: h for h in hooks}

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, code: int, data: dict[str, Any]) -> None:
            body = json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            hook = table.get(self.path.split("?", 1)[0].rstrip("/"))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 1 << 20)) if length else b""
            if hook is None:
                self._reply(404, {"error": "no flow listens on this path", "paths": sorted(table)})
                return
            if not authorized(hook, self.headers, body):
                self._reply(401, {"error": f"missing or wrong {TOKEN_HEADER} / {SIGNATURE_HEADER}"})
                return
            fire(hook.loaded, f"webhook {hook.path}")
            self._reply(202, {"accepted": True, "flow": hook.loaded.flow.name})

        def do_GET(self) -> None:
            self._reply(405, {"error": "POST to a webhook path", "paths": sorted(table)})

        def log_message(self, format: str, *args: Any) -> None:
            return

    return ThreadingHTTPServer((bind, port), Handler)
