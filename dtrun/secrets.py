"""The secrets store: per repository, in the user's config folder, readable by the user only.

Values live outside the repository (nothing a commit or a code snapshot could pick up), in one JSON
file per repository with mode 0600 inside a 0700 folder. They reach a job only as environment variables
at start, are masked in its output, and never enter run or job records.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from dtrun.config import config_home
from dtrun.errors import DtrunError, NotFound

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise DtrunError(f"invalid secret name '{name}'",
                         hint="a secret is passed as an environment variable: letters, digits and _, "
                         "not starting with a digit (e.g. WANDB_API_KEY)")
    return name


class SecretStore:
    def __init__(self, repo: str, root: Path | None = None) -> None:
        self.repo = repo
        folder = root or config_home() / "secrets"
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", repo)[:60]
        self.path = folder / f"{slug}-{hashlib.sha256(repo.encode()).hexdigest()[:8]}.json"

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise DtrunError(f"cannot read the secrets file {self.path}: {exc}",
                             hint="fix or delete it, then add the secrets again") from None
        return {str(k): str(v) for k, v in data.get("secrets", {}).items()}

    def _write(self, secrets: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"repo": self.repo, "secrets": secrets}, fh, indent=1, sort_keys=True)
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)

    def add(self, name: str, value: str) -> bool:
        """Store a secret; True if it replaced an existing one."""
        check_name(name)
        if not value:
            raise DtrunError(f"secret {name}: the value is empty", hint="type or pipe a non-empty value")
        secrets = self._read()
        replaced = name in secrets
        secrets[name] = value
        self._write(secrets)
        return replaced

    def delete(self, name: str) -> None:
        secrets = self._read()
        if name not in secrets:
            raise NotFound(f"no secret named '{name}' for {self.repo}", hint="`dtrun secrets list` shows them")
        del secrets[name]
        self._write(secrets)

    def names(self) -> list[str]:
        return sorted(self._read())

    def values(self, wanted: list[str] | None = None, *, workflow: str | None = None) -> dict[str, str]:
        """All of the repository's secrets, or only `wanted` (a workflow's `secrets:` list)."""
        secrets = self._read()
        if wanted is None:
            return secrets
        missing = [n for n in wanted if n not in secrets]
        if missing:
            raise NotFound(f"workflow '{workflow}' needs the secret{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(missing)}, which {'are' if len(missing) > 1 else 'is'} not set",
                           hint=f"dtrun secrets add {missing[0]}")
        return {n: secrets[n] for n in wanted}
