"""The store's records as JSON: what earlier dtrun versions wrote still reads, a damaged record is one
clear `CorruptRecord` naming the field, and reading them needs no validation library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dtrun.store import ArtifactRecord, JobRecord, RunRecord, State, Store, TagRecord
from dtrun.store.failures import CorruptRecord
from dtrun.store.records import RecordError

#: A job record exactly as dtrun wrote it when records were pydantic models (model_dump_json(indent=1)).
EARLIER_JOB = """{
 "id": "002b36afd4a5",
 "run": "bench-run-945",
 "workflow": "train",
 "provider": "docker",
 "state": "DONE",
 "history": [
  {
   "state": "SUBMITTED",
   "at": 1796033585.6112227
  },
  {
   "state": "DONE",
   "at": 1796033585.6112273
  }
 ],
 "exit_code": 0,
 "message": null,
 "image": "sha256:abc",
 "host": "unix:///var/run/docker.sock",
 "container": null,
 "cache_key": "k1",
 "cached_from": null,
 "needs": ["prep"],
 "deps": [],
 "artifacts": [
  {
   "path": "model",
   "container_path": "/workspace/model",
   "key": "model-1",
   "digest": "aa",
   "files": 2,
   "size": 10,
   "file": false
  }
 ],
 "declared_artifacts": ["model"],
 "ports": {},
 "submitted_at": 1796030930.2467592,
 "finished_at": 1796033585.6112273
}"""


def test_a_job_record_written_by_an_earlier_dtrun_reads_and_is_written_back_byte_for_byte(tmp_path: Path) -> None:
    store = Store(str(tmp_path), "local/p")
    store.write_bytes(store.job_path("002b36afd4a5", "job.json"), EARLIER_JOB.encode())
    job = store.load_job("002b36afd4a5")
    assert job.state is State.DONE and [t.state for t in job.history] == [State.SUBMITTED, State.DONE]
    assert job.artifacts == [ArtifactRecord(path="model", container_path="/workspace/model", key="model-1",
                                            digest="aa", files=2, size=10)]
    assert job.needs == ["prep"] and job.exit_code == 0 and job.finished_at == 1796033585.6112273
    store.save_job(job)
    written = Path(store.job_path(job.id, "job.json")).read_text()
    assert json.loads(written) == json.loads(EARLIER_JOB)
    assert written == json.dumps(json.loads(EARLIER_JOB), indent=1)


def test_unknown_keys_are_ignored_and_missing_optional_ones_take_their_defaults() -> None:
    run = RunRecord.from_dict({"name": "r-1", "repo": "local/p", "workflow": "w", "from_the_future": [1, 2]})
    assert (run.state, run.jobs, run.variables, run.tag, run.dirty) == (State.SUBMITTED, [], {}, None, False)
    assert run.submitted_at > 0
    tag = TagRecord.from_dict({"name": "t", "repo": "local/p", "jobs": ["j1"]})
    assert tag.run is None and tag.jobs == ["j1"] and tag.created_at > 0
    artifact = ArtifactRecord.from_dict({"path": "d", "container_path": "/w/d", "key": "k", "digest": "x",
                                         "files": 1, "size": 3})  # written by the in-job agent: no "file"
    assert artifact.file is False


@pytest.mark.parametrize("record", [
    RunRecord(name="r", repo="x/y", workflow="w", jobs=["a"], variables={"k": "v"}, args=["--x"], tag="t",
              dirty=True, state=State.FAILED, exit_code=2, finished_at=3.0, host="h", user="u"),
    TagRecord(name="t", repo="x/y", run="r", workflow="w", jobs=["a"], artifacts=["out"], user="u"),
    JobRecord(id="j", run="r", workflow="w", provider="bash", ports={"PORT_0": "http://h:1"}, cached_from="i",
              artifacts=[ArtifactRecord(path="f", container_path="/w/f", key="k", digest="d", files=1, size=1,
                                        file=True)]),
])
def test_every_record_survives_a_round_trip_through_json(record: RunRecord | JobRecord | TagRecord) -> None:
    text = json.dumps(record.to_dict())
    assert type(record).from_dict(json.loads(text)) == record


@pytest.mark.parametrize(("text", "why"), [
    (b'{"name": "trunc', "Unterminated string"),
    (b"\x00\x01garbage", "codec can't decode"),
    (b'{"name": "\xc3\x28"}', "'utf-8' codec can't decode"),
    (b'["a list"]', "RunRecord: expected a JSON object, got list"),
    (b'{"hello": 1}', "RunRecord: the field 'name' is missing"),
    (b'{"name": "r", "repo": "x", "workflow": "w", "state": "HALF"}', "the field 'state' should be one of"),
    (b'{"name": "r", "repo": "x", "workflow": "w", "jobs": "j1"}', "the field 'jobs' should be a list of strings"),
    (b'{"name": "r", "repo": "x", "workflow": "w", "exit_code": "0"}', "the field 'exit_code' should be an integer"),
    (b'{"name": "r", "repo": "x", "workflow": "w", "dirty": 1}', "the field 'dirty' should be true or false"),
    (b'{"name": "r", "repo": "x", "workflow": "w", "submitted_at": true}', "'submitted_at' should be a number"),
    (b'{"name": "r", "repo": "x", "workflow": 7}', "the field 'workflow' should be a string, got int 7"),
])
def test_a_damaged_run_record_is_one_clear_error_naming_the_file(tmp_path: Path, text: bytes, why: str) -> None:
    store = Store(str(tmp_path), "local/p")
    store.write_bytes(store.run_path("bad"), text)
    with pytest.raises(CorruptRecord) as error:
        store.load_run("bad")
    assert error.value.message.startswith(f"the record {store.run_path('bad')} in the store {tmp_path} is damaged (")
    assert why in error.value.message
    assert isinstance(error.value, ValueError)


def test_a_bad_value_inside_a_nested_record_names_both_fields() -> None:
    data = json.loads(EARLIER_JOB)
    data["artifacts"][0]["files"] = "two"
    with pytest.raises(RecordError, match=r"JobRecord: in the field 'artifacts': ArtifactRecord: the field 'files' "
                                          r"should be an integer, got str 'two'"):
        JobRecord.from_dict(data)


def test_reading_records_imports_neither_pydantic_nor_fsspec(tmp_path: Path) -> None:
    """A local store's records are read with plain file calls and the standard library (issue 19)."""
    store = Store(str(tmp_path), "local/p")
    store.save_run(RunRecord(name="r-1", repo="local/p", workflow="w"))
    code = ("import sys; from dtrun.store import Store; "
            f"s = Store({str(tmp_path)!r}, 'local/p'); assert s.load_run('r-1').workflow == 'w'; "
            "assert s.run_names() == ['r-1'] and 'r-1.json' in s.modified(s.repo_path('runs')); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'fsspec', 'asyncio'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
