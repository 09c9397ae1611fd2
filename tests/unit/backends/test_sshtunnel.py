"""The ssh tunnel's command line, and its failure reported in ssh's own words."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dtrun.backends.docker.sshtunnel import SshTunnel, TunnelError


def test_argv_forwards_the_remote_socket() -> None:
    tunnel = SshTunnel("ssh://me@gpu-box:2222")
    try:
        assert tunnel.argv[-2:] == ["--", "gpu-box"]
        assert tunnel.argv[tunnel.argv.index("-p"):tunnel.argv.index("-p") + 2] == ["-p", "2222"]
        assert tunnel.argv[tunnel.argv.index("-l"):tunnel.argv.index("-l") + 2] == ["-l", "me"]
        assert f"{tunnel.socket}:/var/run/docker.sock" in tunnel.argv
        assert "ExitOnForwardFailure=yes" in tunnel.argv
    finally:
        tunnel.close()
    assert not tunnel.folder.exists()


def test_ssh_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "ssh"
    fake.write_text("#!/bin/sh\necho 'Permission denied (publickey).' >&2\nexit 255\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    tunnel = SshTunnel("ssh://me@gpu-box")
    with pytest.raises(TunnelError, match=r"Permission denied \(publickey\)"):
        tunnel.start()
    assert not tunnel.folder.exists()


def test_an_ssh_child_started_on_a_short_lived_thread_outlives_that_thread() -> None:
    """The parent-death signal follows the thread that started the child: `dtrun attach` forwards a job's
    ports from a watch thread that then returns, and the forward must stay (it vanished before)."""
    import subprocess
    import threading
    import time

    from dtrun.backends.docker.sshtunnel import popen_ssh

    started: list[subprocess.Popen[bytes]] = []
    watch = threading.Thread(target=lambda: started.append(popen_ssh(["sleep", "30"])))
    watch.start()
    watch.join()
    [child] = started
    try:
        time.sleep(0.5)  # the signal, if any, comes as the thread ends
        assert child.poll() is None, f"the child died with its thread (exit {child.returncode})"
    finally:
        child.terminate()
        child.wait(timeout=10)
    assert child.returncode == -15
