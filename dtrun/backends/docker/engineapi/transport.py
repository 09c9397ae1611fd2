"""HTTP/1.1 to the Docker daemon over a raw socket, with a pool of kept-alive connections.

Why not http.client or requests: importing http.client costs ~20 ms (the email package) and requests with
urllib3 ~50 ms, on the critical path of every run, and each of a run's ~25 calls paid urllib3's layers.
The daemon speaks a small, well-behaved subset of HTTP/1.1 (Content-Length or chunked bodies, keep-alive),
which is all this module implements: a request (a body of bytes, a file or an iterator, sent chunked), the
status line and headers, and the body read whole or streamed with large reads.

A connection goes back to the pool once its response was read to the end; a response abandoned halfway
(a log stream left early) closes its connection. Every socket failure is `DaemonUnreachable`.
"""

from __future__ import annotations

import contextlib
import io
import select
import socket
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any, Union
from urllib.parse import quote, urlsplit

from dtrun.backends.docker.engineapi.errors import DaemonUnreachable

if TYPE_CHECKING:
    import ssl

Body = Union[bytes, bytearray, memoryview, IO[bytes], Iterable[bytes], None]  # noqa: UP007 (an alias, run time)

#: bytes gathered before a chunk of an iterator's body is sent (fewer, larger writes)
SEND_CHUNK = 1 << 16
#: the socket's read buffer: headers, chunk sizes and small bodies come out of it without a system call
READ_BUFFER = 1 << 16
MAX_LINE = 1 << 16


def dialer(url: str, tls: ssl.SSLContext | None = None, connect_timeout: float = 30.0) -> Callable[[], socket.socket]:
    """A function that opens a new connection to the daemon at `url` (unix://, tcp://, http://, https://).

    https:// (or tcp:// with `tls`) wraps the socket in `tls`, checking the host name when it verifies."""
    parts = urlsplit(url)
    if parts.scheme in ("unix", "http+unix"):
        path = parts.path or "/var/run/docker.sock"

        def unix() -> socket.socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(connect_timeout)
                sock.connect(path)
            except BaseException:
                sock.close()
                raise
            return sock

        return unix
    if parts.scheme not in ("tcp", "http", "https"):
        raise ValueError(f"unsupported Docker endpoint {url!r}: expected unix://, tcp://, http:// or https://")
    host, port = parts.hostname or "localhost", parts.port or (2376 if tls or parts.scheme == "https" else 2375)
    if parts.scheme == "https" and tls is None:
        import ssl

        tls = ssl.create_default_context()

    def tcp() -> socket.socket:
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is None:
            return sock
        try:
            return tls.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise

    return tcp


class Connection:
    """One socket to the daemon and its buffered reader."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.rfile: io.BufferedReader = sock.makefile("rb", buffering=READ_BUFFER)  # type: ignore[assignment]

    def stale(self) -> bool:
        """An idle connection with something to read has been closed by the daemon (or is out of step)."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        for part in (self.rfile, self.sock):
            with contextlib.suppress(OSError):
                part.close()


class Pool:
    """Idle connections, shared by every thread of the process (at most `size` kept)."""

    def __init__(self, dial: Callable[[], socket.socket], size: int = 16) -> None:
        self._dial = dial
        self._size = size
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    def get(self) -> tuple[Connection, bool]:
        """A connection, and whether it was reused (a reused one may have been closed by the daemon)."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return Connection(self._dial()), False
            if not conn.stale():
                return conn, True
            conn.close()

    def put(self, conn: Connection) -> None:
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _lost(exc: BaseException) -> DaemonUnreachable:
    """The socket error in a few words (`connection refused`), as the daemon's users know them."""
    if isinstance(exc, DaemonUnreachable):
        return exc
    if isinstance(exc, socket.timeout):
        return DaemonUnreachable("timed out waiting for the daemon")
    reason = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
    return DaemonUnreachable(str(reason).lower())


class Response:
    """The daemon's answer: status, headers (lower-cased names) and the body, read once."""

    def __init__(self, pool: Pool, conn: Connection, method: str) -> None:
        self._pool: Pool | None = pool
        self._conn: Connection | None = conn
        line = conn.rfile.readline(MAX_LINE)
        if not line:
            raise DaemonUnreachable("the daemon closed the connection without an answer")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise DaemonUnreachable(f"not an HTTP answer from the daemon: {line[:80]!r}")
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers: dict[str, str] = {}
        while True:
            header = conn.rfile.readline(MAX_LINE)
            if header in (b"\r\n", b"\n"):
                break
            if not header:
                raise DaemonUnreachable("the daemon closed the connection in the middle of an answer")
            name, _, value = header.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self._keep = (parts[0] == "HTTP/1.1" and self.headers.get("connection", "").lower() != "close")
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        self._left: int | None = int(length) if length is not None and not self._chunked else None
        if method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            self._left, self._chunked = 0, False
        if self._left is None and not self._chunked:
            self._keep = False  # the body ends when the daemon closes the connection
        if self._left == 0:
            self._done()

    def read(self) -> bytes:
        """The whole body."""
        return b"".join(self.iter_raw(READ_BUFFER * 16))  # chunk by chunk: small answers need no big buffer

    def json(self) -> Any:
        import json

        data = self.read()
        return json.loads(data) if data.strip() else None

    def iter_raw(self, size: int = 1 << 20, *, gather: bool = False) -> Generator[bytes, None, None]:
        """The body as it comes, in pieces of up to `size` bytes (a chunked body: chunk by chunk, or with
        `gather`, small chunks joined into pieces of about `size`, for a long download read in bulk)."""
        conn = self._conn
        if conn is None:
            return
        try:
            if self._chunked:
                yield from self._chunks(conn, size if gather else 0)
            elif self._left is not None:
                while self._left > 0:
                    data = conn.rfile.read(min(size, self._left))
                    if not data:
                        raise DaemonUnreachable("the daemon closed the connection in the middle of an answer")
                    self._left -= len(data)
                    yield data
            else:
                while True:
                    data = conn.rfile.read1(size)
                    if not data:
                        break
                    yield data
        except OSError as exc:
            self.close()
            raise _lost(exc) from None
        except BaseException:
            self.close()  # abandoned halfway (GeneratorExit) or failed: the connection is out of step
            raise
        self._done()

    def _chunks(self, conn: Connection, size: int) -> Iterator[bytes]:
        """A chunked body chunk by chunk (`size` 0), or read straight into pieces of `size` bytes: for a
        long download (an export) one copy fewer than joining the daemon's 32 KiB chunks. The pieces are
        bytearrays, each new (a consumer may keep them)."""
        rfile = conn.rfile
        piece = bytearray(size)
        view = memoryview(piece)
        filled = 0
        while True:
            line = rfile.readline(MAX_LINE)
            if not line:
                raise DaemonUnreachable("the daemon closed the connection in the middle of an answer")
            length = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if length == 0:
                while rfile.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                break
            if not size:
                data = rfile.read(length)
                if len(data) < length:
                    raise DaemonUnreachable("the daemon closed the connection in the middle of an answer")
                yield data
            while size and length:
                got = rfile.readinto(view[filled:filled + min(length, size - filled)])
                if not got:
                    raise DaemonUnreachable("the daemon closed the connection in the middle of an answer")
                filled += got
                length -= got
                if filled == size:
                    view.release()
                    yield piece  # type: ignore[misc]
                    piece = bytearray(size)
                    view = memoryview(piece)
                    filled = 0
            if rfile.read(2) != b"\r\n":
                raise DaemonUnreachable("the daemon closed the connection in the middle of an answer")
        if filled:
            yield bytes(view[:filled])
        view.release()

    def _done(self) -> None:
        conn, pool = self._conn, self._pool
        self._conn = self._pool = None
        if conn is not None and pool is not None:
            if self._keep:
                pool.put(conn)
            else:
                conn.close()

    def close(self) -> None:
        """Drop the connection (unless the body was read to its end, which returned it to the pool)."""
        conn, self._conn, self._pool = self._conn, None, None
        if conn is not None:
            conn.close()


def query(params: dict[str, Any] | None) -> str:
    """`?a=1&b=x` from the non-None parameters; booleans as 1/0, lists repeated."""
    if not params:
        return ""
    items: list[str] = []
    for key, value in params.items():
        if value is None:
            continue
        for one in value if isinstance(value, (list, tuple)) else [value]:
            text = ("1" if one else "0") if isinstance(one, bool) else str(one)
            items.append(f"{quote(key, safe='')}={quote(text, safe='')}")
    return "?" + "&".join(items) if items else ""


def _send_chunked(sock: socket.socket, body: Iterable[bytes]) -> None:
    """`Transfer-Encoding: chunked`: small pieces gathered to SEND_CHUNK, large ones sent as they are."""
    buffer = bytearray()

    def flush() -> None:
        if buffer:
            sock.sendall(b"%x\r\n" % len(buffer) + buffer + b"\r\n")
            buffer.clear()

    for piece in body:
        if not piece:
            continue
        if len(piece) >= SEND_CHUNK:
            flush()
            sock.sendall(b"%x\r\n" % len(piece))
            sock.sendall(piece)
            sock.sendall(b"\r\n")
        else:
            buffer += piece
            if len(buffer) >= SEND_CHUNK:
                flush()
    flush()
    sock.sendall(b"0\r\n\r\n")


def _file_pieces(file: IO[bytes]) -> Iterator[bytes]:
    while True:
        data = file.read(1 << 20)
        if not data:
            return
        yield data


def send(pool: Pool, method: str, path: str, *, body: Body = None, headers: dict[str, str] | None = None,
         timeout: float | None = 120.0, download: bool = False) -> Response:
    """One request; the response with its headers read (its body not yet). `timeout` bounds each wait for the
    daemon (None: none, for log streams and waits). A request on a kept-alive connection that the daemon had
    closed meanwhile is sent again on a new one when its body can be replayed.

    `download`: a long body (an export's tar) is asked for as HTTP/1.0, so the daemon sends it plain, to the
    end of the connection, without chunk framing to parse: about 0.2 s of CPU less per GiB, read in large
    blocks (the connection is not kept; one new connection is nothing against such a body)."""
    head = [f"{method} {path} HTTP/1.{0 if download else 1}", "Host: docker", "User-Agent: dtrun"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    fixed = body is None or isinstance(body, (bytes, bytearray, memoryview))
    if body is None:
        if method in ("POST", "PUT"):
            head.append("Content-Length: 0")
    elif fixed:
        head.append(f"Content-Length: {len(body)}")  # type: ignore[arg-type]
    else:
        head.append("Transfer-Encoding: chunked")
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
    for attempt in (1, 2):
        try:
            conn, reused = pool.get()
        except OSError as exc:
            raise _lost(exc) from None
        try:
            conn.sock.settimeout(timeout)
            if fixed and body is not None and len(body) < SEND_CHUNK:  # type: ignore[arg-type]
                conn.sock.sendall(request + bytes(body))  # type: ignore[arg-type]
            else:
                conn.sock.sendall(request)
                if fixed and body is not None:
                    conn.sock.sendall(body)  # type: ignore[arg-type]
                elif body is not None:
                    pieces = _file_pieces(body) if hasattr(body, "read") else body  # type: ignore[arg-type]
                    _send_chunked(conn.sock, pieces)  # type: ignore[arg-type]
            return Response(pool, conn, method)
        except (OSError, DaemonUnreachable) as exc:
            conn.close()
            if attempt == 1 and reused and fixed and not isinstance(exc, socket.timeout):
                continue  # the daemon had closed the idle connection: once more on a new one
                # (not after a timeout: the daemon may be doing what was asked, slowly)
            raise _lost(exc) from None
        except BaseException:
            conn.close()
            raise
    raise AssertionError("unreachable")
