"""Parsed YAML read back from the client's cache (`dtrun.spec.yamlcache`): the same Document as a parse,
never a stale one, and no PyYAML import on the way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dtrun.spec import yamlcache
from dtrun.spec.yamlparse import parse
from dtrun.spec.yamlpos import RawFloat, load_yaml

TEXT = """workflows:
  - name: train
    provider: bash
    python: 3.10
    commands: |
      echo one
      echo two
    env: {A: 'quoted', B: 2}
"""


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_a_file_read_again_is_the_document_a_parse_gives(tmp_path: Path) -> None:
    file = tmp_path / "workflows.yaml"
    file.write_text(TEXT)
    first = load_yaml(file)
    assert yamlcache.read(file, TEXT) is not None  # kept
    again = load_yaml(file)
    assert again == first == parse(file, TEXT)
    python = again.data["workflows"][0]["python"]
    assert isinstance(python, RawFloat) and python.raw == "3.10"
    assert again.styles[("workflows", 0, "env", "A")] == "'" and again.indents[("workflows", 0, "commands")] == 6
    assert str(again.key_position(("workflows", 0, "env"))) == f"{file}:8:5"


def test_a_changed_file_is_parsed_again_whatever_its_timestamps(tmp_path: Path) -> None:
    file = tmp_path / "workflows.yaml"
    file.write_text(TEXT)
    load_yaml(file)
    stamp = file.stat()
    file.write_text(TEXT.replace("train", "tune"))
    os.utime(file, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # an edit within the same timestamp
    assert load_yaml(file).data["workflows"][0]["name"] == "tune"


def test_a_damaged_entry_is_a_miss_and_values_marshal_cannot_hold_are_not_kept(tmp_path: Path,
                                                                                data_dir: Path) -> None:
    file = tmp_path / "workflows.yaml"
    file.write_text(TEXT)
    load_yaml(file)
    [entry] = (data_dir / "cache" / "yaml").iterdir()
    entry.write_bytes(b"\x00not marshal")
    assert yamlcache.read(file, TEXT) is None
    assert load_yaml(file) == parse(file, TEXT)
    dated = tmp_path / "dated.yaml"
    dated.write_text("when: 2022-05-01\n")
    assert str(load_yaml(dated).data["when"]) == "2022-05-01"
    assert yamlcache.read(dated, dated.read_text()) is None


def test_only_the_entries_written_last_are_kept(tmp_path: Path, data_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlcache, "KEEP", 3)
    files = []
    for index in range(5):
        file = tmp_path / f"w{index}.yaml"
        file.write_text(f"n: {index}\n")
        load_yaml(file)
        files.append(file)
    assert len(list((data_dir / "cache" / "yaml").iterdir())) == 3
    assert yamlcache.read(files[-1], files[-1].read_text()) is not None


def test_a_file_read_again_does_not_import_pyyaml(tmp_path: Path, data_dir: Path) -> None:
    file = tmp_path / "workflows.yaml"
    file.write_text(TEXT)
    load_yaml(file)
    code = ("import sys; from pathlib import Path; from dtrun.spec.yamlpos import load_yaml; "
            f"doc = load_yaml(Path({str(file)!r})); print(doc.data['workflows'][0]['name'], 'yaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "DTRUN_DATA_DIR": str(data_dir)}).stdout
    assert out.split() == ["train", "False"]
