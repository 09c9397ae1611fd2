"""Running a flow file through a `Session`: its store, code snapshot, secrets, plan and summary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dtrun.flows.loader import load_flow

if TYPE_CHECKING:
    from dtrun.api import Session
    from dtrun.flows.compile import FlowResult

SECRET_ENV_PREFIX = "DTRUN_SECRET_"


def collect_secrets(pairs: list[str]) -> dict[str, str]:
    """`DTRUN_SECRET_<NAME>` variables, then `--secret NAME=VALUE` or `--secret NAME` (value from $NAME)."""
    from dtrun.errors import DtrunError

    secrets = {k[len(SECRET_ENV_PREFIX):]: v for k, v in os.environ.items() if k.startswith(SECRET_ENV_PREFIX)}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            if name not in os.environ:
                raise DtrunError(f"--secret {name}: no environment variable {name} to take the value from",
                                 hint=f"export {name}=... or pass --secret {name}=VALUE")
            value = os.environ[name]
        secrets[name] = value
    return secrets


def repo_of(path: Path) -> tuple[str, Path | None]:
    """The store namespace of a flow: its git repository's id, or one derived from its folder."""
    from dtrun.code.listing import find_git_root

    git_root = find_git_root(path.resolve().parent)
    if git_root is None:
        import hashlib

        folder = path.resolve().parent
        return f"local/flows-{hashlib.sha256(str(folder).encode()).hexdigest()[:10]}", None
    from dtrun.snapshot import _repo_id

    return _repo_id(git_root, None), git_root


def run_flow(session: Session, path: Path, secrets: dict[str, str], trigger: str = "manual",
             no_cache: bool = False) -> tuple[FlowResult, dict[str, Any]]:
    """Check and prepare the flow (nothing runs if anything is wrong), then run it on the engine.

    Its records go to the store of the flow's repository (or of its folder), like workflow runs, so
    `dtrun status`, `logs`, `stop` and the reconcile after a killed client see flow jobs as any other.
    """
    from dtrun.engine.events import Event
    from dtrun.flows.compile import declared_values, flow_plan, prepare, results, summary
    from dtrun.flows.program import Options
    from dtrun.snapshot import Snapshot, take_snapshot
    from dtrun.store import Store

    loaded = load_flow(path)
    repo, git_root = repo_of(path)
    snapshot = take_snapshot(git_root, git_root) if git_root else \
        Snapshot(path.resolve().parent, [], None, None, False, repo)
    store = Store(session.settings.store, snapshot.repo_id)
    prepared = prepare(loaded, session.backend, session.settings, base_dir=git_root or path.resolve().parent,
                       output=lambda line: session.emit(Event("build", line)))
    # the manifests' declared `env` values from the host are secrets too: masked like `--secret` values
    masked = declared_values(prepared, secrets, os.environ)
    plan, programs = flow_plan(loaded, prepared, secrets, Options(store=store, docker_host=session.backend.host,
                                                                  masked=masked, no_cache=no_cache))
    from dtrun.engine.reconcile import reconcile

    reconcile(store, lambda: session.backend, lambda: [*secrets.values(), *masked.values()],
              status=lambda m: session.emit(Event("status", m)))
    engine = session.engine(snapshot, store=store, secrets=secrets)
    engine.masker_values += [v for k, v in masked.items() if k not in secrets]
    outcome = engine.run(plan, variables={"trigger": trigger, "flow_file": str(loaded.path)}, no_cache=no_cache)
    result = results(loaded.flow.name, outcome.run.name, programs, {r.workflow: r for r in outcome.jobs},
                     outcome.exit_code)
    data = summary(result, programs)
    store.write_json(store.repo_path("flows", f"{outcome.run.name}.json"), data)
    return result, data
