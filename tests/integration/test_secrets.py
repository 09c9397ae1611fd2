"""Secrets: added from stdin, listed by name, passed as env vars, masked everywhere, absent from records."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from tests.conftest import BUSYBOX_IMAGE, DtrunRunner

WORKFLOWS = f"""
workflows:
  - name: leak
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands:
      - echo "token=$API_TOKEN"
      - 'printf "split:%s" "$API_TOKEN" | fold -w 3; echo'
      - echo "$SSH_KEY"
      - echo "other=${{OTHER:-unset}}"
  - name: only-token
    provider: docker
    image: {BUSYBOX_IMAGE}
    secrets: [API_TOKEN]
    commands:
      - echo "token=$API_TOKEN other=${{OTHER:-unset}}"
  - name: needs-missing
    provider: docker
    image: {BUSYBOX_IMAGE}
    secrets: [NOT_SET]
    commands: ["true"]
"""

TOKEN = "tok-9f8e7d6c5b4a"
KEY = "-----BEGIN TEST KEY-----\nQUJDREVGR0hJSktMTU5PUA\n-----END TEST KEY-----"


def test_secrets_commands_and_masking(dtrun: DtrunRunner, make_project: Callable[..., Path],
                                      tmp_path: Path) -> None:
    root = make_project({".dtrun/workflows.yaml": WORKFLOWS})
    assert dtrun("secrets", "add", "API_TOKEN", cwd=root, input=TOKEN + "\n").code == 0
    assert dtrun("secrets", "add", "SSH_KEY", cwd=root, input=KEY).code == 0
    assert dtrun("secrets", "add", "OTHER", cwd=root, input="zzz-other-zzz").code == 0
    listed = dtrun("secrets", "list", cwd=root)
    assert listed.stdout.split() == ["API_TOKEN", "OTHER", "SSH_KEY"] and TOKEN not in listed.output
    argv = dtrun("secrets", "add", "X", "value-on-the-command-line", cwd=root)
    assert argv.code != 0  # never from the command line
    bad = dtrun("secrets", "add", "9bad", cwd=root, input="x")
    assert bad.code != 0 and "invalid secret name" in bad.stderr
    files = list((tmp_path / "config" / "dtrun" / "secrets").iterdir())
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert not any(TOKEN in p.read_text() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts)

    result = dtrun("run", "leak", cwd=root)
    assert result.code == 0, result.output
    assert "token=***" in result.stdout and TOKEN not in result.output
    assert "QUJDREVGR0hJSktMTU5PUA" not in result.stdout and "BEGIN TEST KEY" not in result.stdout
    assert "other=***" in result.stdout
    # the value was really passed: folded into 3-character pieces it is not a match any more
    assert "split:tok" in result.stdout.replace("\n", "") and "9f8e7d6c5b4a" in result.stdout.replace("\n", "")

    logs = dtrun("logs", result.stderr.split("run ")[1].split(":")[0], cwd=root)
    assert "token=***" in logs.stdout and TOKEN not in logs.stdout and "QUJDREVG" not in logs.stdout
    for path in dtrun.store.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".txt"):
            text = path.read_text()
            assert TOKEN not in text and "QUJDREVGR0hJSktMTU5PUA" not in text, path

    only = dtrun("run", "only-token", cwd=root)
    assert only.code == 0 and "token=*** other=unset" in only.stdout, only.output
    missing = dtrun("run", "needs-missing", cwd=root)
    assert missing.code != 0 and "NOT_SET" in missing.stderr and "dtrun secrets add NOT_SET" in missing.stderr

    assert dtrun("secrets", "delete", "OTHER", cwd=root).code == 0
    assert dtrun("secrets", "list", cwd=root).stdout.split() == ["API_TOKEN", "SSH_KEY"]
    gone = dtrun("secrets", "delete", "OTHER", cwd=root)
    assert gone.code != 0 and "no secret named 'OTHER'" in gone.stderr
