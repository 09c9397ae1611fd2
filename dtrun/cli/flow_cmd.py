"""`dtrun flow run PATH` (seed 004: test a flow locally) and `dtrun flow serve` (its triggers).

Output for people and for CI: each line a step prints comes out as `[job/step] line` on stdout; what
dtrun says about the run goes to stderr with the same prefixes. Without a terminal, or with NO_COLOR,
there are no colours. The exit code is non-zero when any job failed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dtrun.cli.app import app

if TYPE_CHECKING:
    from dtrun.flows.engine import FlowHooks

flow_app = typer.Typer(help="Run DataTorch-style flows (jobs of steps that call actions).", no_args_is_help=True)
app.add_typer(flow_app, name="flow")

SecretOpt = Annotated[list[str] | None, typer.Option(
    "--secret", "-s", help="A secret for ${{ secrets.NAME }}: NAME=VALUE, or NAME to take $NAME. "
    "DTRUN_SECRET_NAME variables are secrets too.")]
HostOpt = Annotated[str | None, typer.Option("--host", "-H", help="Docker endpoint, e.g. ssh://me@gpu-box.")]


def _colour(stream: object) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def hooks(verbose_builds: bool = True) -> FlowHooks:
    import threading

    from dtrun.flows.engine import FlowHooks

    lock = threading.Lock()
    out_colour, err_colour = _colour(sys.stdout), _colour(sys.stderr)

    def tag(prefix: str, colour: bool, code: str) -> str:
        if not prefix:
            return ""
        return f"\x1b[{code}m[{prefix}]\x1b[0m " if colour else f"[{prefix}] "

    def line(prefix: str, text: str) -> None:
        with lock:
            sys.stdout.write(tag(prefix, out_colour, "36") + text + "\n")
            sys.stdout.flush()

    def status(prefix: str, message: str) -> None:
        code = "31" if message.startswith("failed") else "32" if message in ("done", "success") else "2"
        with lock:
            sys.stderr.write(tag(prefix, err_colour, "1") + (f"\x1b[{code}m{message}\x1b[0m" if err_colour
                                                             else message) + "\n")
            sys.stderr.flush()

    def build(text: str) -> None:
        if verbose_builds:
            with lock:
                sys.stderr.write(f"  | {text}\n")

    return FlowHooks(status=status, line=line, build_line=build)


@flow_app.command("run")
def run(
    path: Annotated[Path, typer.Argument(help="The flow file (.yml, .yaml or .json).")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write a JSON summary of jobs, steps, "
                                                  "outcomes and outputs to this file ('-' for stdout).")] = None,
    secret: SecretOpt = None,
    host: HostOpt = None,
) -> int:
    """Run a flow locally: jobs in parallel (unless `needs`), each step in its own container."""
    import json

    from dtrun.config import load_settings
    from dtrun.flows.session import collect_secrets, make_engine

    settings = load_settings()
    engine, loaded = make_engine(path, settings, host=host, secrets=collect_secrets(secret or []), hooks=hooks())
    prepared = engine.prepare(loaded)
    result = engine.run(loaded, prepared)
    summary = result.summary()
    if json_out is not None:
        text = json.dumps(summary, indent=1)
        if str(json_out) == "-":
            sys.stdout.write(text + "\n")
        else:
            json_out.write_text(text + "\n")
    failed = [jid for jid, j in result.jobs.items() if j.outcome == "failure"]
    engine.hooks.status("", f"flow {loaded.flow.name}: run {result.run} "
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

    from dtrun.config import load_settings
    from dtrun.errors import DtrunError
    from dtrun.flows.loader import LoadedFlow, find_flows, load_flow
    from dtrun.flows.session import collect_secrets, make_engine
    from dtrun.flows.triggers import Scheduler, make_server, schedules, webhooks

    settings = load_settings()
    secrets = collect_secrets(secret or [])
    folders = paths or [p for p in (Path(".dtrun/flows"), Path(".datatorch/flows"), Path("flows")) if p.is_dir()]
    files = find_flows(folders)
    loaded = [load_flow(p) for p in files]
    triggered = [f for f in loaded if f.flow.on.schedule or f.flow.on.webhook]
    if not triggered:
        raise DtrunError(f"no flow with `on.schedule` or `on.webhook` in {', '.join(map(str, folders)) or '.'}",
                         hint="add e.g. `on: {schedule: [{cron: '0 3 * * *'}]}` to a flow, or name its file")
    out = hooks()
    stop = threading.Event()
    lock = threading.Lock()
    finished: list[bool] = []
    pool = ThreadPoolExecutor(max_workers=4)

    def execute(flow: LoadedFlow, why: str) -> None:
        ok = False
        try:
            engine, fresh = make_engine(flow.path, settings, host=host, secrets=secrets, hooks=out)
            out.status("", f"trigger: {why} -> flow {fresh.flow.name}")
            result = engine.run(fresh, engine.prepare(fresh), trigger=why)
            ok = result.succeeded
            out.status("", f"flow {fresh.flow.name}: run {result.run} {'succeeded' if ok else 'failed'}")
        except DtrunError as exc:
            out.status("", f"failed: flow {flow.flow.name} ({why}): {exc}")
        with lock:
            finished.append(ok)
            if max_runs is not None and len(finished) >= max_runs:
                stop.set()

    def fire(flow: LoadedFlow, why: str) -> None:
        pool.submit(execute, flow, why)

    hooks_ = webhooks(triggered, secrets)
    server = make_server(hooks_, fire, bind=bind, port=port) if hooks_ else None
    if server is not None:
        actual = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        for hook in hooks_:
            out.status("", f"webhook for flow {hook.loaded.flow.name}: POST http://{bind}:{actual}{hook.path}")
    entries = schedules(triggered)
    for entry in entries:
        out.status("", f"schedule for flow {entry.loaded.flow.name}: {entry.cron.text}")
    def pause(seconds: float) -> None:
        stop.wait(seconds)

    scheduler = Scheduler(entries, fire, sleep=pause)
    out.status("", "serving; Ctrl+C to stop")
    try:
        if entries:
            scheduler.run(stop)
        else:
            stop.wait()
    except KeyboardInterrupt:
        out.status("", "stopping")
    finally:
        if server is not None:
            server.shutdown()
        pool.shutdown(wait=True)
    return 0 if all(finished) else 1
