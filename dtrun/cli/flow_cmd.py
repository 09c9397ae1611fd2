"""`dtrun flow run PATH` (seed 004: test a flow locally) and `dtrun flow serve` (its triggers).

Output for people and for CI: each line a step prints comes out as `[job/step] line` on stdout; what
dtrun says about the run goes to stderr with the same prefixes. With `--json` stdout holds the JSON
summary alone (as `dtrun status --json`) and the steps' lines go to stderr. Without a terminal, or with
NO_COLOR, there are no colours. The exit code is non-zero when any job failed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dtrun.cli.app import app
from dtrun.cli.render import Renderer

flow_app = typer.Typer(help="Run DataTorch-style flows (jobs of steps that call actions).", no_args_is_help=True)
app.add_typer(flow_app, name="flow")

SecretOpt = Annotated[list[str] | None, typer.Option(
    "--secret", "-s", metavar="NAME[=VALUE]", help="A secret for ${{ secrets.NAME }}: NAME=VALUE, or NAME to "
    "take $NAME. DTRUN_SECRET_NAME variables are secrets too.")]
HostOpt = Annotated[str | None, typer.Option("--host", "-H", metavar="HOST",
                                             help="Docker endpoint, e.g. ssh://me@gpu-box.")]


def _say(renderer: Renderer, message: str) -> None:
    from dtrun.engine.events import Event

    renderer(Event("status", message, step=""))


@flow_app.command("run")
def run(
    path: Annotated[Path, typer.Argument(metavar="FLOW", help="The flow file (.yml, .yaml or .json).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary of jobs, steps, outcomes and "
                                          "outputs on stdout (outputs keep their JSON types); the steps' "
                                          "output goes to stderr then.")] = False,
    json_file: Annotated[Path | None, typer.Option("--json-file", metavar="FILE",
                                                   help="Write the JSON summary to FILE.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every job and step even if an identical "
                                           "one ran before (the job cache and actions' `cache:`).")] = False,
    secret: SecretOpt = None,
    host: HostOpt = None,
) -> int:
    """Run a flow locally: jobs in parallel (unless `needs`), each step in its own container."""
    import json

    from dtrun.api import Session
    from dtrun.flows.session import collect_secrets

    renderer = Renderer(output=sys.stderr if as_json else None)  # with --json, stdout is the JSON alone
    secrets = collect_secrets(secret or [])
    result, summary = Session(path.resolve().parent, host=host, listener=renderer).flow_run(
        path, secrets=secrets, no_cache=no_cache)
    text = json.dumps(summary, indent=1)
    if json_file is not None:
        json_file.write_text(text + "\n")
    if as_json:
        sys.stdout.write(text + "\n")
    failed = [jid for jid, j in result.jobs.items() if j.outcome == "failure"]
    if result.exit_code == 130:
        _say(renderer, f"flow {result.flow}: run {result.run} interrupted (stopped)")
        return 130
    _say(renderer, f"flow {result.flow}: run {result.run} "
         + ("succeeded" if not failed else f"failed (jobs: {', '.join(failed)})"))
    return 0 if result.succeeded else 1


@flow_app.command("serve")
def serve(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Flow files or folders of them (default: .dtrun/flows, .datatorch/flows and flows/ here).")] = None,
    port: Annotated[int, typer.Option("--port", "-p", help="Port of the webhook server (0: any free one).")]
    = 8787,
    bind: Annotated[str, typer.Option("--bind", help="Address to listen on; loopback unless you put a "
                                      "proxy in front.")] = "127.0.0.1",
    max_runs: Annotated[int | None, typer.Option("--max-runs", help="Exit after this many triggered runs "
                                                 "finished (exit code 1 if any failed).")] = None,
    secret: SecretOpt = None,
    host: HostOpt = None,
) -> int:
    """Run the flows' schedules (`on.schedule`) and webhooks (`on.webhook`) until interrupted."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from dtrun.api import Session
    from dtrun.errors import DtrunError
    from dtrun.flows.loader import LoadedFlow, find_flows, load_flow
    from dtrun.flows.session import collect_secrets
    from dtrun.flows.triggers import Scheduler, make_server, schedules, webhooks

    secrets = collect_secrets(secret or [])
    folders = paths or [p for p in (Path(".dtrun/flows"), Path(".datatorch/flows"), Path("flows")) if p.is_dir()]
    files = find_flows(folders)
    loaded = [load_flow(p) for p in files]
    triggered = [f for f in loaded if f.flow.on.schedule or f.flow.on.webhook]
    if not triggered:
        raise DtrunError(f"no flow with `on.schedule` or `on.webhook` in {', '.join(map(str, folders)) or '.'}",
                         hint="add e.g. `on: {schedule: [{cron: '0 3 * * *'}]}` to a flow, or name its file")
    out = Renderer()
    session = Session(host=host, listener=out)
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=4)

    def start(path: Path, why: str) -> tuple[str, bool]:
        result, _ = session.flow_run(path, secrets=secrets, trigger=why)
        return result.run, result.succeeded

    from dtrun.config import data_home
    from dtrun.flows.serving import TriggeredRuns

    runs = TriggeredRuns(start, lambda m: _say(out, m), data_home() / "flow-serve-errors.log")

    def execute(flow: LoadedFlow, why: str) -> None:
        runs.execute(flow.flow.name, flow.path, why)
        if max_runs is not None and runs.counts.finished >= max_runs:
            stop.set()

    def fire(flow: LoadedFlow, why: str) -> None:
        pool.submit(execute, flow, why)

    hooks_ = webhooks(triggered, secrets)
    server = make_server(hooks_, fire, bind=bind, port=port) if hooks_ else None
    if server is not None:
        actual = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        for hook in hooks_:
            _say(out, f"webhook for flow {hook.loaded.flow.name}: POST http://{bind}:{actual}{hook.path}")
    entries = schedules(triggered)
    for entry in entries:
        _say(out, f"schedule for flow {entry.loaded.flow.name}: {entry.cron.text}")
    def pause(seconds: float) -> None:
        stop.wait(seconds)

    scheduler = Scheduler(entries, fire, sleep=pause)
    _say(out, "serving; Ctrl+C to stop")
    try:
        if entries:
            scheduler.run(stop)
        else:
            stop.wait()
    except KeyboardInterrupt:
        _say(out, "stopping")
    finally:
        if server is not None:
            server.shutdown()
        pool.shutdown(wait=True)
    _say(out, runs.counts.line())
    return 0 if runs.counts.failed == 0 else 1
