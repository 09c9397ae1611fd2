"""Finding an action from its reference: a built-in, a local folder, a git repository at a tag, or an image.

| reference                              | where the action comes from                                  |
|----------------------------------------|--------------------------------------------------------------|
| `dtrun/shell`                          | dtrun's built-in `actions/shell`                              |
| `./actions/x`, `../x`, `/abs/x`        | a folder, relative to the flow's git repository (or its folder) |
| `owner/repo@tag`                       | `<actions_git_base>/owner/repo` cloned at `tag`, cached       |
| `datatorch/name@tag`                   | DataTorch's shorthand: `<actions_git_base>/datatorch-actions/name` |
| `{name, tag, git, file}`               | `git` (default: as above) at `tag`; `file` names the manifest |

`actions_git_base` defaults to https://github.com, as DataTorch's agent did; the tag `latest` means the
repository's default branch. A `git` URL may carry credentials: they reach `git clone` only, are masked
in every message, and the clone keeps no remote (so they are not stored on disk either).
| `docker://registry/name:tag`           | a published image; its `dev.dtrun.action` label, if any, is its manifest |
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote

from dtrun.config import Settings, data_home
from dtrun.errors import DtrunError
from dtrun.flows.models import ActionManifest, ActionObject
from dtrun.structs import struct

DEFAULT_GIT_BASE = "https://github.com"
DATATORCH_OWNER = "datatorch-actions"
LATEST = "latest"
ACTION_LABEL = "dev.dtrun.action"
_GIT_REF = re.compile(r"^([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)@([A-Za-z0-9_./-]+)$")


class ActionError(DtrunError):
    """An action that cannot be found, fetched or read."""


@struct(frozen=True)
class ActionRef:
    """A parsed reference; exactly one of `folder`, `git` or `image` is set."""

    text: str
    folder: Path | None = None
    git: str | None = None
    tag: str | None = None
    image: str | None = None
    #: the manifest's file name, when the object form's `file` names another than action-datatorch.yaml
    file: str | None = None


@struct(frozen=True)
class Action:
    """A resolved action: its manifest, and its files (a folder) or its image."""

    ref: ActionRef
    manifest: ActionManifest | None
    folder: Path | None = None
    image: str | None = None


def builtin_dir() -> Path:
    """`actions/` in a source checkout, `dtrun/_actions` in an installed wheel."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_actions", here.parent / "actions"):
        if candidate.is_dir():
            return candidate
    raise ActionError("dtrun's built-in actions (actions/) are missing from the install")


def git_base(settings: Settings) -> str:
    return (settings.actions_git_base or DEFAULT_GIT_BASE).rstrip("/")


def _repo_path(name: str) -> str:
    """`datatorch/x` is DataTorch's shorthand for its `datatorch-actions` organisation."""
    owner, sep, rest = name.strip().strip("/").partition("/")
    return f"{DATATORCH_OWNER}/{rest}" if sep and owner.lower() == "datatorch" else name.strip().strip("/")


def parse_ref(action: str | ActionObject, *, base_dir: Path, settings: Settings) -> ActionRef:
    if isinstance(action, ActionObject):
        url = action.git or f"{git_base(settings)}/{_repo_path(action.name)}"
        # the text keys resolved actions: two manifests of one repository are two actions
        text = f"{action.name}@{action.tag}" + (f" ({action.file})" if action.file else "")
        return ActionRef(text, git=url, tag=action.tag, file=action.file)
    text = action.strip()
    if text.startswith("docker://"):
        image = text[len("docker://"):]
        if not image:
            raise ActionError(f"action '{text}' names no image", hint="e.g. docker://registry:5000/name:tag")
        return ActionRef(text, image=image)
    if text.startswith(("./", "../", "/")) or text in (".", ".."):
        return ActionRef(text, folder=(base_dir / text).resolve())
    builtin = re.fullmatch(r"dtrun/([A-Za-z0-9_.-]+)", text)
    if builtin:
        folder = builtin_dir() / builtin.group(1)
        if not folder.is_dir():
            names = sorted(p.name for p in builtin_dir().iterdir() if p.is_dir())
            raise ActionError(f"no built-in action '{text}'",
                              hint=f"built-ins: {', '.join('dtrun/' + n for n in names)}")
        return ActionRef(text, folder=folder)
    match = _GIT_REF.match(text)
    if match:
        owner, repo, tag = match.groups()
        return ActionRef(text, git=f"{git_base(settings)}/{_repo_path(f'{owner}/{repo}')}", tag=tag)
    raise ActionError(f"cannot read the action reference '{text}'",
                      hint="use owner/repo@tag, {name, tag, git}, a local path (./actions/x), docker://image:tag "
                      "or a built-in (dtrun/shell, dtrun/python, dtrun/download)")


def fetch_git(url: str, tag: str) -> Path:
    """The repository at `tag`, cloned once into dtrun's data folder and reused afterwards."""
    key = hashlib.sha256(f"{url}@{tag}".encode()).hexdigest()[:16]
    safe = safe_url(url)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", safe.rsplit("/", 2)[-2] + "-" + safe.rsplit("/", 1)[-1])[:40]
    dest = data_home() / "actions" / f"{name}-{key}"
    if (dest / ".dtrun-complete").is_file():
        return dest
    import git

    # one folder per clone in flight: two jobs of one run may fetch the same action at once
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        env = {"GIT_TERMINAL_PROMPT": "0"}
        if tag == LATEST:  # DataTorch's `latest`: the default branch
            git.Repo.clone_from(url, tmp, env=env, depth=1, single_branch=True)
        else:
            git.Repo.clone_from(url, tmp, env=env, branch=tag, depth=1, single_branch=True)
    except git.GitCommandError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        detail = (exc.stderr or "").strip().replace("\n", " ")
        for secret in _credentials(url):
            detail = detail.replace(secret, "***")
        raise ActionError(f"cannot clone {safe_url(url)} at tag '{tag}': {safe_url(detail)}",
                          hint="check the repository and tag; the base URL for owner/repo@tag is "
                          "`dtrun config set actions_git_base URL`") from None
    shutil.rmtree(tmp / ".git", ignore_errors=True)  # its config holds the URL, credentials included
    (tmp / ".dtrun-complete").write_text(f"{safe_url(url)}@{tag}\n")
    shutil.rmtree(dest, ignore_errors=True)
    try:
        tmp.rename(dest)
    except OSError:  # another process finished the same clone first
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _credentials(url: str) -> list[str]:
    """The user, password or token a URL carries (to mask them wherever git repeats them)."""
    match = re.search(r"://([^/@\s]+)@", url)
    if not match:
        return []
    parts = [unquote(p) for p in match.group(1).split(":", 1)]
    return sorted({match.group(1), *parts} - {""}, key=len, reverse=True)


def safe_url(text: str) -> str:
    """A URL or git message without the credentials some URLs carry (`user:password@`, `token@`)."""
    return re.sub(r"://[^/@\s]+@", "://***@", text)


def resolve(ref: ActionRef, client: object | None = None) -> Action:
    """Files and manifest of a folder or git action; for an image, the manifest from its label (pulled if needed)."""
    from dtrun.flows.loader import load_manifest

    if ref.folder is not None:
        if not ref.folder.is_dir():
            raise ActionError(f"action '{ref.text}': no folder {ref.folder}")
        manifest, _ = load_manifest(ref.folder, f"action '{ref.text}' ({ref.folder})", file=ref.file)
        return Action(ref, manifest, folder=ref.folder)
    if ref.git is not None:
        assert ref.tag is not None
        folder = fetch_git(ref.git, ref.tag)
        manifest, _ = load_manifest(folder, f"the repository of action '{ref.text}' ({safe_url(ref.git)} at {ref.tag})",
                                    file=ref.file)
        return Action(ref, manifest, folder=folder)
    assert ref.image is not None
    return Action(ref, image_manifest(client, ref.image), image=ref.image)


def image_manifest(client: object | None, image: str) -> ActionManifest | None:
    if client is None:
        return None
    from dtrun.flows.loader import manifest_from_text
    from dtrun.images.manager import _get_or_pull

    found = _get_or_pull(client, image, "action image")
    text = (found.labels or {}).get(ACTION_LABEL)
    return manifest_from_text(text, f"docker://{image} ({ACTION_LABEL} label)") if text else None
