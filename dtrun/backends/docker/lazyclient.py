"""The Engine API client, made on first use: building a Docker backend asks nothing of the daemon (issue 19).

Connecting costs importing the client (engineapi/) and a round trip to the daemon (/_ping); a
run whose jobs are all cache hits needs neither (the engine takes their images from the client's record,
`dtrun.images.record`), so it never connects. A daemon that does not answer raises `DockerUnavailable`
at that first use, with the same message as before.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any


class LazyClient:
    def __init__(self, client: Any = None, connect: Callable[[], Any] | None = None) -> None:
        self._client = client
        self._connect = connect
        self._connect_lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The Engine API client (`engineapi.client.Client`), connected by the thread that first needs it
        (the others wait for it)."""
        if self._client is None and self._connect is not None:
            with self._connect_lock:
                if self._client is None:
                    self._client = self._connect()
        return self._client

    @client.setter
    def client(self, value: Any) -> None:
        self._client = value

    @property
    def connected(self) -> bool:
        """Whether the daemon was reached (or a client given): what a cache hit must leave False."""
        return self._client is not None

    def connect_soon(self) -> None:
        """Start connecting on a thread, for a caller that knows the host will be needed (a `--no-cache`
        run): importing the client and the daemon's first answer then overlap the spec, the plan and the
        snapshot (its git commands) instead of following them. `warm_up` runs on the same thread once
        connected. A failure is not raised here: the first use connects again and raises it there."""
        if self._client is not None or self._connect is None:
            return

        def connect() -> None:
            with contextlib.suppress(Exception):  # raised again, where it can be reported, at the first use
                self.client  # noqa: B018 - connects
                self.warm_up()

        threading.Thread(target=connect, name="dtrun-connect", daemon=True).start()

    def warm_up(self) -> None:
        """What a subclass asks the daemon right after `connect_soon` connected (nothing here)."""
