"""The agent on each node of a multi-node job: node 0 is the job's record, the others keep their own."""

from __future__ import annotations

from pathlib import Path

from dtrun.agent import formats
from dtrun.engine.logs import stored_lines
from tests.unit.agent.test_agent import manifest, run, status, store

SCRIPT = 'mkdir -p out && echo "node $PET_NODE_RANK" > out/who.txt && echo "hello from node $PET_NODE_RANK"'


def test_only_node_0_records_the_job_and_saves_its_outputs(tmp_path: Path) -> None:
    for node in (1, 0):  # the order nodes end in must not matter
        data = manifest(tmp_path, ["bash", "-c", SCRIPT], workspace=str(tmp_path / f"ws{node}"),
                        working_dir=str(tmp_path / f"ws{node}"),
                        artifacts=[{"path": "out", "container_path": str(tmp_path / f"ws{node}" / "out")}])
        code, _, err = run(data, {"PET_NODE_RANK": str(node)})
        assert code == 0, err
    main, other = status(tmp_path), store(tmp_path).read_json(store(tmp_path).job_path("job1", "agent-node1.json"))
    assert main["exit_code"] == other["exit_code"] == 0
    assert [a["path"] for a in main["artifacts"]] == ["out"] and other["artifacts"] == []

    def log(name: str) -> str:
        with store(tmp_path).open(store(tmp_path).job_path("job1", name), "rb") as fh:
            return "".join(text.decode() for _, text in stored_lines(fh))

    assert "hello from node 0" in log(formats.LOG_FILE) and "node 1" not in log(formats.LOG_FILE)
    assert "hello from node 1" in log("logs-node1.txt")
