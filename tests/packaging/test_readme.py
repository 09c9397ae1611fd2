"""The README cannot drift from the truth: its Quick start runs verbatim with the installed wheel.

Convention: an HTML comment starting `<!-- readme-test: quick-start` marks the ```bash block right after
it; this test runs that block's text unchanged with `bash -euo pipefail` in an empty folder.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.packaging.conftest import REPO_ROOT, Installed

MARKER = "<!-- readme-test: quick-start"


def quick_start(readme: str) -> str:
    """The bash block right after the marker (exactly one marker; the block is fenced with ```bash)."""
    assert readme.count(MARKER) == 1, f"README.md needs exactly one '{MARKER}' comment"
    after = readme[readme.index(MARKER):]
    after = after[after.index("-->") + 3:]
    found = re.match(r"\s*```bash\n(.*?)\n```", after, re.DOTALL)
    assert found, "the quick-start marker must be followed directly by a ```bash block"
    return found.group(1) + "\n"


def test_quick_start_extraction_is_strict() -> None:
    block = f"{MARKER} note -->\n```bash\necho one\necho two\n```\nafter\n"
    assert quick_start(block) == "echo one\necho two\n"
    for broken in ("no marker at all", f"{MARKER} -->\n\nsome text\n```bash\necho\n```\n", block + block):
        try:
            quick_start(broken)
        except AssertionError:
            continue
        raise AssertionError(f"accepted: {broken!r}")


def test_readme_quick_start_runs_verbatim(plain_install: Installed, tmp_path: Path) -> None:
    script = quick_start((REPO_ROOT / "README.md").read_text())
    assert "dtrun init" in script and "dtrun run" in script
    folder = tmp_path / "newcomer"
    folder.mkdir()
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=folder, capture_output=True, text=True,
                          env=plain_install.env(), timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the README's Quick start failed:\n{script}\n---\n{output}"
    assert "Traceback" not in output
    if "dtrun validate" in script:  # what its comment in the README promises
        assert "ok: 2 workflows in .dtrun/workflows.yaml" in output
    assert "Hello from dtrun" in proc.stdout
    repo = folder / "hello-dtrun"
    assert (repo / ".dtrun" / "workflows.yaml").is_file()
    assert (repo / "fetched" / "output" / "hello.txt").is_file()


def test_readme_opens_with_make_demo_and_make_test() -> None:
    head = (REPO_ROOT / "README.md").read_text().splitlines()[:6]
    assert any(line.startswith("make demo ") for line in head), head
    assert any(line.startswith("make test ") for line in head), head
    makefile = (REPO_ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"the Makefile has no `{target}` target"
    demo = makefile[makefile.index("\ndemo:"):].split("\n\n")[0]
    folder = re.search(r"cd (\S+) &&", demo)
    assert folder and (REPO_ROOT / folder.group(1) / ".dtrun").is_dir(), demo
