"""dtrun's Engine API client (issue 19): the HTTP framing on a socket pair, the log frames however they are
cut, the client against the real daemon, and a run that never imports docker-py, requests or urllib3."""

from __future__ import annotations

import io
import random
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dtrun.backends.docker.engineapi import errors as api_errors
from dtrun.backends.docker.engineapi.frames import demultiplex, output
from dtrun.backends.docker.engineapi.transport import Connection, Pool, _send_chunked, query, send
from tests.conftest import BUSYBOX_IMAGE, SESSION, DtrunRunner

LABELS = {"dev.dtrun": "1", "dev.dtrun.store": f"engineapi-{SESSION}"}


def frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


def cuts(data: bytes, seed: int) -> list[bytes]:
    """`data` cut at random places (single bytes included)."""
    rng = random.Random(seed)
    pieces, at = [], 0
    while at < len(data):
        step = rng.choice([1, 2, 7, 8, 9, 100, 4096])
        pieces.append(data[at:at + step])
        at += step
    return pieces


@pytest.mark.parametrize("seed", range(5))
def test_frames_come_out_whole_however_the_stream_is_cut(seed: int) -> None:
    writes = [(1, b"line one\n"), (2, b"an error\n"), (1, b""), (1, bytes(range(256)) * 40), (2, b"x")]
    stream = b"".join(frame(s, p) for s, p in writes)
    assert list(demultiplex(cuts(stream, seed))) == [p for _, p in writes if p]
    assert list(demultiplex(cuts(stream, seed), streams=(2,))) == [b"an error\n", b"x"]


def test_a_stream_cut_inside_a_frame_is_a_lost_connection_and_a_tty_stream_passes_as_it_is() -> None:
    with pytest.raises(api_errors.DaemonUnreachable, match="inside a frame"):
        list(demultiplex([frame(1, b"hello")[:-2]]))
    assert b"".join(output([b"\x01\x00\x00\x00\x00\x00\x00\x02", b"hi"])) == b"hi"  # sniffed: multiplexed
    assert b"".join(output([b"plain", b" tty output"])) == b"plain tty output"  # sniffed: raw


def pair() -> tuple[Pool, socket.socket]:
    """A pool whose one connection is a socket pair's end; the test plays the daemon on the other."""
    ours, theirs = socket.socketpair()
    handed = [ours]
    pool = Pool(lambda: handed.pop())
    return pool, theirs


def test_a_chunked_answer_is_read_whole_and_the_connection_goes_back_to_the_pool() -> None:
    pool, daemon = pair()
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (b"hello ", b"chunked ", b"x" * 70000, b"world"))
    daemon.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nApi-Version: 1.41\r\n\r\n" + body
                   + b"0\r\n\r\n")
    response = send(pool, "GET", "/x")
    assert (response.status, response.headers["api-version"]) == (200, "1.41")
    assert response.read() == b"hello chunked " + b"x" * 70000 + b"world"
    assert len(pool._idle) == 1  # kept alive
    request = daemon.recv(65536)
    assert request.startswith(b"GET /x HTTP/1.1\r\n") and b"Host: docker" in request


def test_a_long_chunked_answer_is_gathered_into_pieces_of_the_asked_size() -> None:
    pool, daemon = pair()
    parts = [bytes([i % 251]) * (i * 37 % 3000 + 1) for i in range(200)]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    sender = threading.Thread(target=daemon.sendall, args=(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                                           + body + b"0\r\n\r\n",))
    sender.start()
    pieces = list(send(pool, "GET", "/archive").iter_raw(1000, gather=True))
    sender.join()
    assert b"".join(pieces) == b"".join(parts)
    assert {len(p) for p in pieces[:-1]} == {1000} and 0 < len(pieces[-1]) <= 1000
    assert len(pool._idle) == 1


def test_a_download_is_asked_as_http_1_0_and_read_to_the_connections_end() -> None:
    pool, daemon = pair()
    data = bytes(range(256)) * 4000

    def answer() -> None:
        daemon.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/x-tar\r\n\r\n" + data)
        daemon.shutdown(socket.SHUT_WR)  # the body ends where the daemon closes

    sender = threading.Thread(target=answer)
    sender.start()
    response = send(pool, "GET", "/containers/c/archive?path=%2Fout", download=True)
    assert b"".join(response.iter_raw(1 << 16)) == data
    sender.join()
    assert daemon.recv(65536).startswith(b"GET /containers/c/archive?path=%2Fout HTTP/1.0\r\n")
    assert pool._idle == []  # such a connection is never kept


def test_a_streamed_answer_left_halfway_closes_its_connection() -> None:
    pool, daemon = pair()
    daemon.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
    pieces = send(pool, "GET", "/logs").iter_raw(5)
    assert next(pieces) == b"12345"
    pieces.close()
    assert pool._idle == []
    assert daemon.recv(65536).startswith(b"GET /logs") and daemon.recv(10) == b""  # closed on our side


def test_an_iterator_body_goes_chunked_with_small_pieces_gathered() -> None:
    ours, theirs = socket.socketpair()
    pieces = [b"a" * 10] * 20000 + [b"b" * 100000, b"c"]
    sender = threading.Thread(target=_send_chunked, args=(ours, iter(pieces)))
    sender.start()
    reader = Connection(theirs).rfile
    got, sizes = b"", []
    while True:
        size = int(reader.readline().strip(), 16)
        if size == 0:
            assert reader.readline() == b"\r\n"
            break
        got += reader.read(size)
        sizes.append(size)
        assert reader.read(2) == b"\r\n"
    sender.join()
    assert got == b"".join(pieces)
    assert len(sizes) < 10  # not one chunk per 10-byte piece


def test_an_error_answer_raises_the_daemons_message_with_its_status() -> None:
    from dtrun.backends.docker.engineapi.api import Api

    pool, daemon = pair()
    message = b'{"message":"No such container: nope"}'
    daemon.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                   % (len(message), message))
    with pytest.raises(api_errors.NotFound) as info:
        Api(pool, "1.41").inspect_container("nope")
    assert (info.value.status_code, info.value.explanation) == (404, "No such container: nope")
    assert query({"all": True, "filters": None, "label": ["a=1", "b"]}) == "?all=1&label=a%3D1&label=b"


# -- against the real daemon ------------------------------------------------------------------------------
@pytest.fixture
def client() -> Iterator[Any]:
    from dtrun.backends.docker.connection import connect

    made = connect()
    yield made
    for container in made.containers.list(all=True, filters={"label": f"dev.dtrun.store={LABELS['dev.dtrun.store']}"}):
        container.remove(force=True)
    for volume in made.volumes.list(filters={"label": f"dev.dtrun.store={LABELS['dev.dtrun.store']}"}):
        volume.remove(force=True)
    made.close()


@pytest.mark.docker
def test_calls_share_one_kept_alive_connection(client: Any) -> None:
    assert client.ping() and client.version()["ApiVersion"] == client.api_version
    first = client.pool._idle[0]
    for _ in range(5):
        assert client.info()["ID"]
    assert client.pool._idle == [first]


@pytest.mark.docker
def test_archives_go_in_chunked_and_come_out_whole_and_logs_keep_their_streams(client: Any) -> None:
    from dtrun.backends.docker.engineapi.create import Mount

    volume = client.volumes.create(name=f"dtrun-test-{SESSION}-engineapi", labels=LABELS)
    container = client.containers.create(
        BUSYBOX_IMAGE, ["sh", "-c", "echo out; echo err >&2; md5sum /data/big"], entrypoint=[], labels=LABELS,
        mounts=[Mount(target="/data", source=volume.name, type="volume")], network_disabled=True)
    big = random.Random(1).randbytes(3 << 20)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("big")
        info.size = len(big)
        tar.addfile(info, io.BytesIO(big))
    data = buffer.getvalue()
    assert container.put_archive("/data", (data[i:i + 1000] for i in range(0, len(data), 1000)))
    stream, stat = container.get_archive("/data/big")
    assert stat["size"] == len(big)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile("big")
        assert member is not None and member.read() == big
    container.start()
    assert container.wait()["StatusCode"] == 0
    import hashlib

    assert container.logs(stdout=False) == b"err\n"
    lines = list(client.api.logs(container.id, stream=True, follow=True))
    assert b"out\n" in lines and f"{hashlib.md5(big).hexdigest()}  /data/big\n".encode() in lines
    with pytest.raises(api_errors.NotFound, match="Could not find the file"):
        container.get_archive("/data/missing")


@pytest.mark.docker
def test_refusals_are_our_exceptions(client: Any) -> None:
    with pytest.raises(api_errors.ImageNotFound):
        client.images.get(f"dtrun-test-{SESSION}/absent:1")
    with pytest.raises(api_errors.ContainerError, match="exit status 3: bad"):
        client.containers.run(BUSYBOX_IMAGE, ["sh", "-c", "echo bad >&2; exit 3"], remove=True, labels=LABELS)
    name = f"dtrun-test-{SESSION}-twice"
    client.containers.create(BUSYBOX_IMAGE, ["true"], name=name, labels=LABELS)
    with pytest.raises(api_errors.Conflict) as info:
        client.containers.create(BUSYBOX_IMAGE, ["true"], name=name, labels=LABELS)
    assert info.value.status_code == 409 and "already in use" in info.value.explanation


def test_nothing_answers_is_a_clear_error(tmp_path: Path) -> None:
    from dtrun.backends.docker.connection import connect
    from dtrun.errors import DockerUnavailable

    with pytest.raises(DockerUnavailable, match="no such file or directory"):
        connect(f"unix://{tmp_path}/none.sock")


# -- what a run imports -----------------------------------------------------------------------------------
HELLO = """
workflows:
  - name: hello
    provider: bash
    commands:
      - echo hello
"""
PROBE = ("import sys\nfrom dtrun.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as exc:\n"
         "    code = exc.code\nprint('LOADED', sorted({m.split('.')[0] for m in sys.modules} & "
         "{'docker', 'requests', 'urllib3', 'charset_normalizer', 'idna', 'http', 'pydantic', 'pydantic_core', "
         "'jinja2', 'yaml'}), file=sys.stderr)\n")


@pytest.mark.docker
def test_a_run_imports_no_library_it_does_not_need(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    """No docker-py, requests, pydantic or jinja2; and no PyYAML once the workflows file was parsed before."""
    project = make_project({".dstack/workflows.yaml": HELLO})

    def loaded(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=project, env=dtrun.env, text=True,
                              capture_output=True, timeout=600)
        assert "hello" in proc.stdout + proc.stderr or args[0] == "status", proc.stderr
        return next(line for line in proc.stderr.splitlines() if line.startswith("LOADED"))

    loaded("run", "hello")  # builds the image (a build may use more; it is not what is measured)
    assert loaded("run", "hello", "--no-cache") == "LOADED []"
    assert loaded("run", "hello") == "LOADED []"  # a cache hit
    assert loaded("status") == "LOADED []"


# -- registry credentials, found as the docker CLI finds them -------------------------------------------
def test_credentials_come_from_a_helper_else_the_auths_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64
    import json
    import os

    from dtrun.backends.docker.engineapi.registry import auth_header, credentials, registry_of, split_reference

    helper = tmp_path / "bin" / "docker-credential-dtruntest"
    helper.parent.mkdir()
    helper.write_text('#!/bin/sh\nread server\n[ "$1" = get ] && [ "$server" = reg.example:5000 ] || exit 1\n'
                      'echo \'{"ServerURL":"reg.example:5000","Username":"helped","Secret":"s3"}\'\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({
        "auths": {"https://index.docker.io/v1/": {"auth": base64.b64encode(b"hubuser:hubpw").decode()}},
        "credHelpers": {"reg.example:5000": "dtruntest"}}))
    assert split_reference("reg.example:5000/team/app:v1") == ("reg.example:5000/team/app", "v1")
    assert split_reference("reg.example:5000/team/app") == ("reg.example:5000/team/app", None)
    assert (registry_of("reg.example:5000/team/app"), registry_of("library/debian")) == ("reg.example:5000",
                                                                                          "docker.io")
    assert credentials("reg.example:5000") == {"username": "helped", "password": "s3",
                                               "serveraddress": "reg.example:5000"}
    assert credentials("docker.io") == {"username": "hubuser", "password": "hubpw",
                                        "serveraddress": "https://index.docker.io/v1/"}
    assert credentials("other.example") is None
    decoded = json.loads(base64.urlsafe_b64decode(auth_header("debian:bookworm", None)))
    assert decoded["username"] == "hubuser"
    given = {"username": "me", "password": "pw"}
    assert json.loads(base64.urlsafe_b64decode(auth_header("reg.example:5000/x:1", given))) == given
    assert json.loads(base64.urlsafe_b64decode(auth_header("other.example/x:1", None))) == {}


def test_a_mount_is_a_named_volume_never_a_path_of_this_client() -> None:
    from dtrun.backends.docker.engineapi.create import Mount

    assert Mount("/workspace", "dtrun-ws-1", labels={"a": "b"})["VolumeOptions"] == {"Labels": {"a": "b"}}
    with pytest.raises(ValueError, match="only named volumes"):
        Mount("/data", "/home/me/data", type="bind")
