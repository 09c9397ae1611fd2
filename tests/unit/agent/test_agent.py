"""The in-job agent, run as it runs in a job (`python -m dtrun.agent`) against a local-folder store.

What it writes is read back with the client's own code (`dtrun.store.Store`, `dtrun.engine.logs`),
so a format drift between the agent and the engine fails here.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dtrun.agent import formats
from dtrun.agent.manifest import JobManifest, ManifestError
from dtrun.engine.logs import stored_lines
from dtrun.store import Store
from dtrun.store.archive import extract, pack_folder

REPO = "local/agent-test"


def manifest(tmp_path: Path, command: list[str], **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"store": str(tmp_path / "store"), "repo": REPO, "run": "run-1", "job": "job1",
                            "workflow": "train", "command": command, "workspace": str(tmp_path / "ws"),
                            "working_dir": str(tmp_path / "ws"), "log_interval": 0.2, "checkpoint_interval": 0.3,
                            "stop_grace": 3}
    data.update(fields)
    return data


def start(data: dict[str, Any], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLURM_"))}
    full.update(env or {})
    full["DTRUN_AGENT_MANIFEST"] = json.dumps(data)
    return subprocess.Popen([sys.executable, "-m", "dtrun.agent"], env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run(data: dict[str, Any], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = start(data, env)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def store(tmp_path: Path) -> Store:
    return Store(str(tmp_path / "store"), REPO)


def status(tmp_path: Path, job: str = "job1") -> dict[str, Any]:
    return store(tmp_path).read_json(store(tmp_path).job_path(job, formats.STATUS_FILE))  # type: ignore[no-any-return]


def log_text(tmp_path: Path, job: str = "job1") -> bytes:
    with store(tmp_path).open(store(tmp_path).job_path(job, "logs.txt")) as fh:
        return b"".join(text for _, text in stored_lines(fh))


def test_exit_code_logs_and_status(tmp_path: Path) -> None:
    code, out, _ = run(manifest(tmp_path, ["sh", "-c", "echo one; echo two >&2; exit 3"]))
    assert code == 3
    assert out.splitlines() == ["one", "two"]
    assert log_text(tmp_path) == b"one\ntwo\n"
    raw = store(tmp_path).read_bytes(store(tmp_path).job_path("job1", "logs.txt")).splitlines()
    assert all(line.split(b" ", 1)[0].endswith(b"Z") for line in raw)  # one time per line
    st = status(tmp_path)
    assert (st["state"], st["exit_code"], st["stopped"], st["message"]) == ("exited", 3, False, None)


def test_code_inputs_and_artifacts_in_the_clients_format(tmp_path: Path) -> None:
    s = store(tmp_path)
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "train.sh").write_text("cat ../data/in.txt > out/model.txt; echo code ran\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("weights")
    code_path = s.repo_path("code", "abc.tar")
    with s.open(code_path, "wb") as fh:
        pack_folder(src, fh)
    with s.open(s.job_path("up", "artifacts", "data.tar"), "wb") as fh:
        pack_folder(data, fh)
    root = s.root + "/"
    ws = tmp_path / "ws"
    m = manifest(tmp_path, ["sh", "-c", "mkdir -p out && sh train.sh && stat -c 'mode=%a' ../data/in.txt"],
                 code=code_path.removeprefix(root), working_dir=str(ws / "pkg"),
                 inputs=[{"tar": s.job_path("up", "artifacts", "data.tar").removeprefix(root),
                          "target": str(ws / "data")}],
                 artifacts=[{"path": "out", "container_path": str(ws / "pkg" / "out"), "mount": False},
                            {"path": "never", "container_path": str(ws / "never"), "mount": False}])
    code, out, _ = run(m)
    assert (code, out.split()) == (0, ["code", "ran", "mode=444"])  # inputs are read-only, as on Docker
    manifests = s.manifests("job1")
    assert [x["artifact"]["path"] for x in manifests] == ["out"]
    from dtrun.engine.artifacts import artifact_key, tar_name
    from dtrun.store import ArtifactRecord

    record = ArtifactRecord.from_dict(manifests[0]["artifact"])
    assert record.key == artifact_key("out") == formats.artifact_key("out")
    assert formats.tar_name(record.key, record.digest) == tar_name(record.key, record.digest)
    with s.open(s.job_path("job1", "artifacts", tar_name(record.key, record.digest))) as fh:
        extract(fh, tmp_path / "back")
    assert (tmp_path / "back" / "model.txt").read_text() == "weights"
    assert status(tmp_path)["artifacts"] == [manifests[0]["artifact"]]


def test_secrets_masked_and_store_credentials_kept_from_the_command(tmp_path: Path) -> None:
    script = 'echo "token=$HF_TOKEN"; echo "key=${AWS_SECRET_ACCESS_KEY:-none}"; echo "plain=$PLAIN"'
    env = {"HF_TOKEN": "s3cr3t-value", "AWS_SECRET_ACCESS_KEY": "awskey123"}
    code, out, _ = run(manifest(tmp_path, ["sh", "-c", script], secrets=["HF_TOKEN"], env={"PLAIN": "x"}), env)
    assert code == 0
    assert log_text(tmp_path) == b"token=***\nkey=none\nplain=x\n"
    assert "s3cr3t" not in out
    assert "s3cr3t" not in json.dumps(status(tmp_path))


def test_secret_markers_are_replaced_in_the_job_not_in_the_manifest(tmp_path: Path) -> None:
    data = manifest(tmp_path, ["sh", "-c", "echo arg=${{ secrets.HF_TOKEN }} env=$LOGIN"], secrets=["HF_TOKEN"],
                    env={"LOGIN": "user:${{secrets.HF_TOKEN}}"})
    assert "s3cr3t" not in json.dumps(data)
    code, out, _ = run(data, {"HF_TOKEN": "s3cr3t-value"})
    assert code == 0
    assert log_text(tmp_path) == b"arg=*** env=user:***\n"
    assert "s3cr3t" not in out


def test_missing_secret_or_command_is_reported_not_run(tmp_path: Path) -> None:
    code, _, err = run(manifest(tmp_path, ["sh", "-c", "echo ran"], secrets=["NOPE"]))
    assert code == 125
    assert "the secret NOPE is not in the job's environment" in err
    assert status(tmp_path)["message"] == "the secret NOPE is not in the job's environment"
    code, _, _ = run(manifest(tmp_path, ["no-such-command-xyz"], job="job2"))
    assert code == 125
    assert "cannot run no-such-command-xyz" in status(tmp_path, "job2")["message"]


def test_bad_manifest_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = run({"store": "x"})
    assert code == 125 and "the job manifest has no 'repo'" in err
    with pytest.raises(ManifestError, match="relative to the store root"):
        JobManifest.from_dict(manifest(tmp_path, ["true"], code="../etc/passwd"))
    with pytest.raises(ManifestError, match="unknown field 'comand'"):
        JobManifest.from_dict({**manifest(tmp_path, ["true"]), "comand": []})


def _wait_for(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sigterm_is_forwarded_outputs_saved_exit_recorded(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    script = ("mkdir -p out; trap 'echo bye > out/last.txt; echo stopping; exit 7' TERM; "
              "echo ready > out/first.txt; echo ready; while true; do sleep 0.1; done")
    proc = start(manifest(tmp_path, ["sh", "-c", script], artifacts=[
        {"path": "out", "container_path": str(ws / "out"), "mount": False}]))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 7
    st = status(tmp_path)
    assert (st["state"], st["exit_code"], st["stopped"]) == ("exited", 7, True)
    lines = log_text(tmp_path).splitlines()  # the shell may also report its killed `sleep`
    assert lines[0] == b"ready" and lines[-1] == b"stopping"
    [saved] = st["artifacts"]
    assert saved["files"] == 2


def test_a_command_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    proc = start(manifest(tmp_path, ["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"],
                          stop_grace=0.5))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 128 + signal.SIGKILL
    assert status(tmp_path)["stopped"] is True


def test_mount_artifacts_are_checkpointed_while_running_and_restored_on_requeue(tmp_path: Path) -> None:
    s = store(tmp_path)
    ckpt = tmp_path / "ws" / "ckpt"
    art = [{"path": "ckpt", "container_path": str(ckpt), "mount": True}]
    script = ("mkdir -p ckpt; echo 1 > ckpt/step; echo ready; "
              "while [ ! -e " + str(tmp_path / "go") + " ]; do sleep 0.05; done; exit 1")
    proc = start(manifest(tmp_path, ["sh", "-c", script], artifacts=art))
    _wait_for(lambda: bool(s.manifests("job1")))  # saved while the command still runs
    assert proc.poll() is None
    (tmp_path / "go").touch()
    assert proc.wait(timeout=30) == 1
    # A requeued attempt (new node, empty workspace) finds the checkpoint where the job left it.
    import shutil

    shutil.rmtree(tmp_path / "ws")
    code, out, _ = run(manifest(tmp_path, ["sh", "-c", "cat ckpt/step; echo again"], artifacts=art),
                       {"SLURM_RESTART_COUNT": "1"})
    assert (code, out.split()) == (0, ["1", "again"])
    assert status(tmp_path)["attempt"] == 1
    assert log_text(tmp_path) == b"ready\n1\nagain\n"  # one log across attempts


def test_manifest_round_trip() -> None:
    m = JobManifest(store="s3://b/p", repo="r", run="x", job="j", workflow="w", command=["a"], env={"A": "1"})
    assert JobManifest.from_json(m.to_json()) == m
    assert io.StringIO(m.to_json()).read().startswith("{")


def test_the_agent_needs_only_the_standard_library_and_fsspec() -> None:
    """A job image ships the agent alone: importing it must not pull pydantic, docker, rich or yaml."""
    code = ("import sys, dtrun.agent.__main__, dtrun.agent.runner; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'pydantic', 'docker', 'rich', 'typer', 'yaml', 'jinja2'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_node_saves_the_artifacts_that_name_it(tmp_path: Path) -> None:
    """A multi-node job: node 0's agent saves `out` (no node given), node 1's saves `from1` (node: 1), each in
    its own status file; neither saves the other's."""
    ws = tmp_path / "ws"
    arts = [{"path": "out", "container_path": str(ws / "out")},
            {"path": "from1", "container_path": str(ws / "from1"), "node": 1}]
    command = ["sh", "-c", "mkdir -p out from1 && echo $PET_NODE_RANK | tee out/n.txt from1/n.txt"]
    for rank in ("1", "0"):
        code, _, err = run(manifest(tmp_path, command, artifacts=arts), env={"PET_NODE_RANK": rank})
        assert code == 0, err
    s = store(tmp_path)
    node0 = status(tmp_path)
    node1 = s.read_json(s.job_path("job1", formats.per_node(formats.STATUS_FILE, 1)))
    assert [a["path"] for a in node0["artifacts"]] == ["out"]
    assert [a["path"] for a in node1["artifacts"]] == ["from1"]


def test_an_artifacts_node_must_be_a_node_number(tmp_path: Path) -> None:
    art = {"path": "out", "container_path": "/w/out", "node": "all"}
    with pytest.raises(ManifestError, match="an artifact's node must be a node number, not 'all'"):
        JobManifest.from_dict(manifest(tmp_path, ["true"], artifacts=[art]))
    ok = JobManifest.from_dict(manifest(tmp_path, ["true"], artifacts=[{**art, "node": 2}]))
    assert ok.artifacts[0].node == 2 and JobManifest.from_json(ok.to_json()) == ok


def test_a_node_all_artifact_is_saved_by_each_node_under_its_own_path(tmp_path: Path) -> None:
    """The client expands `node: all` into one artifact per node whose `source` is the folder in the node
    and whose path is `<path>/node<N>`; each node's agent saves its own."""
    ws = tmp_path / "ws"
    arts = [{"path": f"every/node{n}", "container_path": str(ws / "every" / f"node{n}"), "node": n,
             "source": str(ws / "every")} for n in (0, 1)]
    command = ["sh", "-c", "mkdir -p every && echo $PET_NODE_RANK > every/n.txt"]
    for rank in ("1", "0"):
        code, _, err = run(manifest(tmp_path, command, artifacts=arts), env={"PET_NODE_RANK": rank})
        assert code == 0, err
    s = store(tmp_path)
    saved = [*status(tmp_path)["artifacts"],
             *s.read_json(s.job_path("job1", formats.per_node(formats.STATUS_FILE, 1)))["artifacts"]]
    assert [(a["path"], a["container_path"]) for a in saved] == [
        ("every/node0", str(ws / "every" / "node0")), ("every/node1", str(ws / "every" / "node1"))]


@pytest.mark.parametrize("version", ["3.8", "3.9"])
def test_a_python_too_old_for_the_agent_is_told_so(version: str) -> None:
    """A job image whose `python` is older than the agent supports gets one clear line, not a traceback
    from deep inside an import; the oldest supported one starts the agent (which then asks for its
    manifest)."""
    import shutil

    import dtrun

    candidates = [shutil.which(f"python{version}"),
                  *map(str, sorted((Path.home() / ".pyenv" / "versions").glob(f"{version}.*/bin/python")))]
    python = next((c for c in candidates if c and subprocess.run(
        [c, "-c", f"import sys; assert sys.version_info[:2] == ({version.replace('.', ', ')})"],
        capture_output=True).returncode == 0), None)
    if python is None:
        pytest.skip(f"no Python {version} on this machine")
    root = Path(dtrun.__file__).parent.parent
    proc = subprocess.run([python, "-m", "dtrun.agent"], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(root)})
    if version == "3.8":
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert "dtrun's in-job agent needs Python 3.9 or later" in proc.stderr and "agent_python" in proc.stderr
    else:
        assert "needs Python" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
