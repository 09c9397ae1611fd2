"""`slurm.*` settings: from the config file or `DTRUN_SLURM_*`, checked, errors in the user's terms;
the registry builds the Slurm backend from them without running any Slurm command."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtrun.backends.registry import create_backend
from dtrun.backends.slurm.backend import SlurmBackend
from dtrun.backends.slurm.hosts import describe, parse_sinfo
from dtrun.backends.slurm.settings import SlurmSettings, parse_duration
from dtrun.config import is_backend_key, load_settings, write_file_setting
from dtrun.errors import DtrunError


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DTRUN_CONFIG", str(tmp_path / "config.yaml"))
    for name in ("DTRUN_BACKEND", "DTRUN_SLURM_LOGIN", "DTRUN_SLURM_PARTITION", "DTRUN_SLURM_RUNTIME",
                 "DTRUN_SLURM_DIR", "DTRUN_SLURM_DOCKER_GPUS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_backend_keys_are_accepted_for_registered_backends_only() -> None:
    assert is_backend_key("slurm.partition") and is_backend_key("slurm.time_limit")
    assert not is_backend_key("nosuch.partition") and not is_backend_key("slurm") and not is_backend_key("docker.x")


def test_config_file_and_environment_reach_the_backend(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_file_setting("backend", "slurm")
    write_file_setting("slurm.partition", "gpu")
    write_file_setting("slurm.runtime", "pyxis")
    monkeypatch.setenv("DTRUN_SLURM_PARTITION", "debug")  # the environment wins, as for every setting
    monkeypatch.setenv("DTRUN_SLURM_DIR", "/tmp/cluster")  # start-slurm's folder: not a setting, ignored
    settings = load_settings()
    assert settings.backend_options("slurm") == {"partition": "debug", "runtime": "pyxis", "dir": "/tmp/cluster"}
    backend = create_backend(settings)
    assert isinstance(backend, SlurmBackend)
    assert (backend.slurm.partition, backend.slurm.runtime, str(backend.slurm.login)) == ("debug", "pyxis", "local")
    with pytest.raises(DtrunError, match=r"unknown setting 'slurm-x\.nosuch'"):
        write_file_setting("slurm-x.nosuch", "1")
    write_file_setting("slurm.nosuch", "1")  # a backend checks its own keys when it is built
    with pytest.raises(DtrunError, match=r"unknown setting 'slurm\.nosuch'"):
        create_backend(load_settings())


def test_options_are_checked() -> None:
    settings = SlurmSettings.from_options({"login": "ssh://me@login:2222", "docker_gpus": "false",
                                           "time_limit": "2h", "stop_grace": "30"})
    assert (settings.login.user, settings.login.port, settings.docker_gpus) == ("me", 2222, False)
    assert (settings.time_limit, settings.stop_grace) == (7200, 30.0)
    for options, message in [({"runtime": "podman"}, "slurm.runtime 'podman'"),
                             ({"partition": "a b"}, "not a valid Slurm partition"),
                             ({"docker_gpus": "maybe"}, "not true or false"),
                             ({"login": "ftp://x"}, "neither 'local' nor"),
                             ({"nosuch": "1"}, "unknown setting 'slurm.nosuch'"),
                             ({"time_limit": "soon"}, "not a duration")]:
        with pytest.raises(DtrunError, match=message):
            SlurmSettings.from_options(options)
    assert parse_duration("90") == 90 and parse_duration("30m") == 1800 and parse_duration("1d") == 86400


def test_hosts_describe_partitions_nodes_and_free_gpus() -> None:
    sep = "\x1f"
    text = sep.join(["node1", "debug*", "mixed", "2/6/0/8", "8192", "1000", "gpu:fake:2(S:0)",
                     "gpu:fake:1(IDX:0)"]) + sep
    shown, data = describe(parse_sinfo(text), "local")
    assert "partition debug (default)  gpus: fake 1/2 free" in shown
    assert "node1" in shown and "cpus 6/8 free" in shown
    assert data[0]["nodes"][0]["gpus"] == [{"type": "fake", "total": 2, "free": 1}]
