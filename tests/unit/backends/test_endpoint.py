"""Which Docker endpoint dtrun talks to: flag, config, DOCKER_HOST (+TLS), current context, socket."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from dtrun.backends.docker.connection import tls_config
from dtrun.backends.docker.endpoint import DEFAULT_SOCKET, resolve
from dtrun.errors import DtrunError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "docker-config"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return config


def make_context(config: Path, name: str, host: str, *, tls: bool = False, skip_verify: bool = False) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    meta.joinpath("meta.json").write_text(json.dumps(
        {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip_verify}}}))
    if tls:
        folder = config / "contexts" / "tls" / digest / "docker"
        folder.mkdir(parents=True)
        for file in ("ca.pem", "cert.pem", "key.pem"):
            (folder / file).write_text("x")


def test_default_socket_when_nothing_is_set() -> None:
    endpoint = resolve()
    assert (endpoint.url, endpoint.source, endpoint.is_local, endpoint.address) == \
        (DEFAULT_SOCKET, "default socket", True, "127.0.0.1")


def test_order_flag_config_env_context(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    make_context(clean_env, "gpu", "ssh://me@ctx-box")
    (clean_env / "config.json").write_text(json.dumps({"currentContext": "gpu"}))
    assert (resolve().url, resolve().source) == ("ssh://me@ctx-box", "Docker context 'gpu'")
    monkeypatch.setenv("DOCKER_HOST", "tcp://env-box:2375")
    assert (resolve().url, resolve().source) == ("tcp://env-box:2375", "DOCKER_HOST")
    assert resolve(config="ssh://cfg-box").source == "dtrun config"
    assert resolve("unix:///tmp/d.sock", "ssh://cfg-box").url == "unix:///tmp/d.sock"


def test_docker_context_env_wins_over_config_json_and_default_means_socket(
        monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    make_context(clean_env, "a", "tcp://a-box:2375")
    make_context(clean_env, "b", "tcp://b-box:2375")
    (clean_env / "config.json").write_text(json.dumps({"currentContext": "a"}))
    monkeypatch.setenv("DOCKER_CONTEXT", "b")
    assert resolve().address == "b-box"
    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    assert resolve().url == DEFAULT_SOCKET


def test_context_with_tls_material(clean_env: Path) -> None:
    make_context(clean_env, "secure", "tcp://tls-box:2376", tls=True)
    (clean_env / "config.json").write_text(json.dumps({"currentContext": "secure"}))
    endpoint = resolve()
    assert endpoint.tls is not None and endpoint.tls.verify
    config = tls_config(endpoint)
    assert config is not None and config.verify and str(config.ca_cert).endswith("docker/ca.pem")
    assert config.cert is not None and config.cert[0].endswith("cert.pem") and config.cert[1].endswith("key.pem")


def test_tls_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for file in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / file).write_text("x")
    monkeypatch.setenv("DOCKER_HOST", "tcp://box:2376")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    config = tls_config(resolve())
    assert config is not None and config.verify and config.ca_cert == str(tmp_path / "ca.pem")
    monkeypatch.setenv("DOCKER_HOST", "ssh://box")
    assert resolve().tls is None


def test_missing_context_and_bad_urls_are_clear_errors(clean_env: Path) -> None:
    (clean_env / "config.json").write_text(json.dumps({"currentContext": "gone"}))
    with pytest.raises(DtrunError, match="current Docker context 'gone' has no usable endpoint") as info:
        resolve()
    assert "docker context use default" in (info.value.hint or "")
    with pytest.raises(DtrunError, match="has no scheme"):
        resolve("gpu-box")
    with pytest.raises(DtrunError, match="unknown scheme 'ftp'"):
        resolve("ftp://gpu-box")
    with pytest.raises(DtrunError, match="names no host"):
        resolve("ssh://")


@pytest.mark.parametrize(("url", "address"), [
    ("ssh://me@gpu-box", "gpu-box"), ("ssh://me@10.0.0.5:2222", "10.0.0.5"), ("tcp://gpu-box:2376", "gpu-box"),
    ("unix:///var/run/docker.sock", "127.0.0.1"),
])
def test_address_the_client_reaches_published_ports_at(url: str, address: str) -> None:
    assert resolve(url).address == address
