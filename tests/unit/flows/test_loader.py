from pathlib import Path

import pytest

from dtrun.errors import SpecError
from dtrun.flows.loader import load_flow


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_and_json_forms(tmp_path: Path) -> None:
    yaml_flow = load_flow(write(tmp_path, "f.yaml", "name: f\non:\n  schedule: '*/5 * * * *'\njobs:\n"
                                "  a:\n    steps:\n      - action: dtrun/shell\n        inputs: {run: ls}\n"))
    assert yaml_flow.flow.on.schedule[0].cron == "*/5 * * * *"
    json_flow = load_flow(write(tmp_path, "f.json", '{"name": "j", "jobs": {"b": {"needs": [], "steps": '
                                '[{"action": {"name": "o/r", "tag": "v1"}}]}}}'))
    assert json_flow.flow.jobs["b"].steps[0].action.tag == "v1"  # type: ignore[union-attr]


@pytest.mark.parametrize("name, text, message", [
    ("f.txt", "name: f", "must have a .yml, .yaml or .json extension"),
    ("f.yaml", "jobs: {a: {steps: [{run: ls}]}}", "missing required property 'name'"),
    ("f.yaml", "name: f\njobs:\n  1bad:\n    steps: [{run: ls}]\n", "must start with a letter or _"),
    ("f.yaml", "name: f\njobs:\n  a:\n    neds: [b]\n    steps: [{run: ls}]\n", "did you mean 'needs'"),
    ("f.yaml", "name: f\njobs:\n  a:\n    needs: [b]\n    steps: [{run: ls}]\n", "needs 'b', which is not a job"),
    ("f.yaml", "name: f\njobs:\n  a: {needs: b, steps: [{run: ls}]}\n  b: {needs: a, steps: [{run: ls}]}\n",
     "`needs` has a cycle"),
    ("f.yaml", "name: f\njobs:\n  a:\n    steps: [{name: x}]\n", "needs an `action`"),
    ("f.json", '{"name": "f", "jobs": {"a": {"steps": [{"run": "ls", "bogus": 1}]}}}', "unknown property 'bogus'"),
])
def test_errors_are_positioned(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(SpecError) as info:
        load_flow(path)
    assert message in str(info.value)
    if not name.endswith(".txt"):
        assert f"{path}:" in str(info.value)
