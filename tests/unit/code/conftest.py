from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Digest indexes go to the test's folder, never the user's data folder."""
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path / "data"))
