"""The dev-environment URLs and the per-job token file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dtrun.providers import devenv


def test_urls_are_the_published_address_with_the_token() -> None:
    ports = [("PORT_0", "127.0.0.1:41001"), ("PORT_1", "127.0.0.1:41002")]
    lab = devenv.announce(devenv.app_env("lab", 1), ports, "tok")
    assert lab == ["  lab: http://127.0.0.1:41002/lab?token=tok"]
    notebook = devenv.announce(devenv.app_env("notebook", 0), ports, "tok")
    assert notebook == ["  notebook: http://127.0.0.1:41001/tree?token=tok"]
    code = devenv.announce(devenv.app_env("code", 0), ports, "pw")
    assert code == ["  code: http://127.0.0.1:41001/", "  code password: pw"]


def test_no_url_for_other_jobs_or_unpublished_ports() -> None:
    assert devenv.announce({}, [("PORT_0", "127.0.0.1:1")], "t") == []
    assert devenv.announce(devenv.app_env("lab", 3), [("PORT_0", "127.0.0.1:1")], "t") == []


def test_tokens_are_new_each_time_and_url_safe() -> None:
    a, b = devenv.new_token(), devenv.new_token()
    assert a != b and len(a) >= 32
    assert all(c.isalnum() or c in "-_" for c in a)


def test_token_file_is_readable_by_its_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path))
    path = devenv.save_token("job1", "s3cret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert devenv.load_token("job1") == "s3cret" and devenv.load_token("other") is None


def test_the_saved_urls_are_private_and_go_with_the_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path))
    devenv.save_token("job1", "s3cret")
    path = devenv.save_urls("job1", {"lab": "http://127.0.0.1:1/lab?token=s3cret"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert devenv.load_urls("job1") == {"lab": "http://127.0.0.1:1/lab?token=s3cret"}
    devenv.forget("job1")
    assert devenv.load_urls("job1") is None and devenv.load_token("job1") is None


def test_app_urls_without_the_token_leave_it_out() -> None:
    assert devenv.app_urls("lab", "h:1", None) == {"lab": "http://h:1/lab"}
    assert devenv.app_urls("notebook", "h:1", "t") == {"notebook": "http://h:1/tree?token=t"}
    assert devenv.app_urls("code", "h:1", "t") == {"code": "http://h:1/", "code password": "t"}


@pytest.mark.parametrize(("provider", "line"), [("lab", 'install "jupyterlab==4.2.5"'),
                                                ("notebook", 'install "notebook==7.2.1"'),
                                                ("code", "code-server@4.90.0 ")])
def test_version_pins_the_tool_in_the_image(provider: str, line: str) -> None:
    import sys

    from dtrun.images.dockerfile import plan_build
    from dtrun.providers.base import Provider, ProviderContext
    from dtrun.providers.code import CodeProvider
    from dtrun.providers.jupyter import LabProvider, NotebookProvider
    from dtrun.spec.models import Workflow

    sys.path.insert(0, str(Path(__file__).parents[1] / "images"))
    from test_plan import DEBIAN  # type: ignore[import-not-found]

    version = line.split("==")[-1].strip('"') if "==" in line else line.split("@")[1].strip()
    workflow = Workflow.validate({"name": "ide", "provider": provider, "version": version,
                                       "python_install": "system", "setup": ["echo set up"]})
    providers: dict[str, Provider] = {"lab": LabProvider(), "notebook": NotebookProvider(), "code": CodeProvider()}
    chosen = providers[provider]
    shape = chosen.shape(workflow, ProviderContext(project_root=Path("/nowhere")))
    assert shape.command is not None and "echo set up\n" in shape.command[6]  # setup runs before the app
    text = plan_build(shape.image, "b", DEBIAN, buildkit=True).dockerfile
    assert line in text
