"""A unix socket that stands in for the Docker daemon: every request is relayed to the real daemon as it
is, except that the body of a container's archive (GET /containers/{id}/archive, the export of an
artifact) is cut where the test says, and the connection then closed, as a dropped link, a dying proxy
or a remote daemon that fails mid-stream would leave it. The client sees real bytes of a real archive
that end early, read through its real transport.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path

ARCHIVE = re.compile(rb"GET /v[0-9.]+/containers/[^/ ]+/archive\?")
DAEMON = "/var/run/docker.sock"

#: where to cut an archive's body: its full bytes -> how many of them are sent
Cut = Callable[[bytes], int]


class CuttingDaemon:
    """`unix://<path>` relays to the daemon, cutting archive bodies with `cut`."""

    def __init__(self, path: Path, cut: Cut, daemon: str = DAEMON) -> None:
        self.path, self.cut, self.daemon = path, cut, daemon
        #: for each archive cut: (its full length, how many bytes of it were sent)
        self.cuts: list[tuple[int, int]] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def close(self) -> None:
        self._server.close()
        if self.path.exists():
            os.unlink(self.path)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(self.daemon)
        archive = threading.Event()
        threading.Thread(target=self._to_client, args=(upstream, client, archive), daemon=True).start()
        seen = b""
        try:
            while data := client.recv(1 << 16):
                seen = (seen + data)[-4096:]
                if ARCHIVE.search(seen):
                    archive.set()  # the client reads each answer before it asks again: what the daemon
                    #                sends from now on is this request's answer
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _shut(upstream)

    def _to_client(self, upstream: socket.socket, client: socket.socket, archive: threading.Event) -> None:
        try:
            while not archive.is_set():
                data = upstream.recv(1 << 16)
                if not data:
                    return
                if archive.is_set():  # the archive's answer started in this read
                    self._cut(upstream, client, data)
                    return
                client.sendall(data)
            self._cut(upstream, client, b"")
        except OSError:
            pass
        finally:
            _shut(client)
            _shut(upstream)

    def _cut(self, upstream: socket.socket, client: socket.socket, first: bytes) -> None:
        """The whole answer (HTTP/1.0: to the end of the connection), then its head and the cut body."""
        answer = bytearray(first)
        while data := upstream.recv(1 << 20):
            answer += data
        head, sep, body = bytes(answer).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
            client.sendall(answer)  # a refusal (404: no such path) goes through as it is
            return
        sent = self.cut(body)
        self.cuts.append((len(body), sent))
        client.sendall(head + sep + body[:sent])


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
