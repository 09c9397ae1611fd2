"""What each CLI path imports, and from where: `python -X importtime` of `dtrun --help`, `dtrun status`
and a cache hit (`dtrun run` of an unchanged job), summarised as the heavy third-party packages
(cumulative import time) and the dtrun module that first pulled each one in.

Target (issue 19): no pydantic, docker-py or jinja2 on a cache hit or on `status`.

    python benchmarks/imports.py [--top 12]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from _measure import machine

IMAGE = os.environ.get("DTRUN_TEST_BUSYBOX", "dtrun-local/busybox:latest")
WORKFLOWS = f"workflows:\n  - name: hello\n    provider: docker\n    image: {IMAGE}\n    commands: [echo hello]\n"
LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")
WATCH = ("pydantic", "docker", "jinja2", "yaml", "rich", "typer", "click", "fsspec", "requests", "urllib3",
         "paramiko", "s3fs", "boto3", "botocore", "aiohttp", "ruamel", "jsonschema", "git", "multiprocessing",
         "asyncio", "email", "http", "ssl", "json", "tarfile", "uuid", "concurrent")


@dataclass
class Node:
    name: str
    cumulative_us: int
    depth: int
    parent: Node | None = None


def parse(stderr: str) -> list[Node]:
    """importtime prints a module after what it imported, indented by nesting depth."""
    nodes: list[Node] = []
    pending: list[Node] = []
    for line in stderr.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        node = Node(match.group(4), int(match.group(2)), len(match.group(3)) // 2)
        for child in [p for p in pending if p.depth == node.depth + 1]:
            child.parent = node
        pending = [p for p in pending if p.depth <= node.depth] + [node]
        nodes.append(node)
    return nodes


def origin(node: Node) -> str:
    """The dtrun module (nearest to the package) whose import brought this one in."""
    chain = []
    current = node.parent
    while current is not None:
        if current.name.startswith("dtrun"):
            chain.append(current.name)
        current = current.parent
    return " <- ".join(chain[:2]) if chain else "(top level)"


def heavy(nodes: list[Node], top: int) -> list[tuple[str, float, str]]:
    out = []
    for node in nodes:
        root_name = node.name.split(".")[0]
        parent_root = node.parent.name.split(".")[0] if node.parent else ""
        if root_name in WATCH and parent_root != root_name and "." not in node.name:
            out.append((node.name, node.cumulative_us / 1000, origin(node)))
    out.sort(key=lambda item: -item[1])
    return out[:top]


def importtime(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, list[Node]]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "dtrun", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"dtrun {' '.join(argv)} failed:\n{proc.stdout}{proc.stderr[-2000:]}")
    nodes = parse(proc.stderr)
    total = sum(n.cumulative_us for n in nodes if n.depth == 0) / 1000
    return total, nodes


#: Runs `python -m dtrun ARGS` with a finder that notes, for each watched package, the dtrun line whose
#: call first imported it (a lazy import inside a function shows at the top level of importtime).
TRACER = r"""
import atexit, json, runpy, sys, traceback
WATCH = set(sys.argv[1].split(","))
seen = {}
class Tracer:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if name == top and top in WATCH and top not in seen:
            frames = [f for f in traceback.extract_stack()[:-1] if "/dtrun/" in f.filename]
            seen[top] = " <- ".join(f"{f.filename.split('/dtrun/', 1)[1]}:{f.lineno}" for f in frames[::-1][:3])
        return None
sys.meta_path.insert(0, Tracer())
atexit.register(lambda: sys.stderr.write("\nDTRUN-IMPORTS " + json.dumps(seen) + "\n"))
sys.argv = ["dtrun", *sys.argv[2:]]
runpy.run_module("dtrun", run_name="__main__", alter_sys=True)
"""


def who_imports(argv: list[str], cwd: Path, env: dict[str, str]) -> dict[str, str]:
    import json

    proc = subprocess.run([sys.executable, "-c", TRACER, ",".join(WATCH), *argv], cwd=cwd, env=env,
                          capture_output=True, text=True)
    for line in proc.stderr.splitlines():
        if line.startswith("DTRUN-IMPORTS "):
            found: dict[str, str] = json.loads(line.split(" ", 1)[1])
            return found
    return {}


def module_imports(cwd: Path, env: dict[str, str]) -> tuple[float, list[Node]]:
    """The issue's row: importing the engine, the Docker backend and the spec modules (no CLI)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import dtrun.engine.runner, dtrun.backends.docker, dtrun.spec"], cwd=cwd, env=env,
                          capture_output=True, text=True, check=True)
    nodes = parse(proc.stderr)
    return sum(n.cumulative_us for n in nodes if n.depth == 0) / 1000, nodes


def compare(root: Path, envs: dict[str, dict[str, str]], repeat: int) -> None:
    """Before and after, interleaved: import time of each path and which heavy packages it loads."""
    cases: list[tuple[str, list[str] | None]] = [
        ("dtrun --help", ["--help"]), ("dtrun status", ["status"]), ("dtrun run hello (cache hit)", ["run", "hello"]),
        ("import dtrun.engine.runner, dtrun.backends.docker, dtrun.spec", None)]
    figures: dict[tuple[str, str], list[float]] = {}
    loaded: dict[tuple[str, str], list[str]] = {}
    for _ in range(repeat):
        for label, argv in cases:
            for name, env in envs.items():
                total, nodes = importtime(argv, root, env) if argv else module_imports(root, env)
                figures.setdefault((label, name), []).append(total)
                tops = {n.name.split(".")[0] for n in nodes}
                loaded[(label, name)] = [m for m in ("pydantic", "docker", "jinja2") if m in tops]
    names = list(envs)
    print("| imports of | " + " | ".join(f"{n}: ms (pydantic/docker/jinja2 loaded)" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for label, _ in cases:
        cells = [f"{statistics.median(figures[(label, n)]):.0f} ms ({', '.join(loaded[(label, n)]) or 'none'})"
                 for n in names]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\n(import time as `python -X importtime` sums it, median; the machine is shared, so compare within a row)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", metavar="REV", help="also compare this git revision's imports")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="dtrun-bench-imports-"))
    try:
        root = base / "project"
        (root / ".dtrun").mkdir(parents=True)
        (root / ".dtrun" / "workflows.yaml").write_text(WORKFLOWS)
        for args_ in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "b"]):
            subprocess.run(["git", "-C", str(root), "-c", "user.name=b", "-c", "user.email=b@b", *args_],
                           check=True, capture_output=True)
        env = {**os.environ, "DTRUN_STORE": str(base / "store"), "DTRUN_DATA_DIR": str(base / "data"),
               "XDG_CONFIG_HOME": str(base / "config"), "NO_COLOR": "1"}
        env.pop("DTRUN_HOST", None)
        subprocess.run([sys.executable, "-m", "dtrun", "run", "hello"], cwd=root, env=env, check=True,
                       capture_output=True)
        print(f"machine: {machine()}\n")
        if args.before:
            from repo_scale import export_revision

            before = {**env, "PYTHONPATH": export_revision(args.before, base / "before"),
                      "DTRUN_DATA_DIR": str(base / "data-before"), "DTRUN_STORE": str(base / "store-before")}
            subprocess.run([sys.executable, "-m", "dtrun", "run", "hello"], cwd=root, env=before, check=True,
                           capture_output=True)
            compare(root, {f"before ({args.before})": before, "after": env}, args.repeat)
        for label, argv in (("dtrun --help", ["--help"]), ("dtrun status", ["status"]),
                            ("dtrun run hello (cache hit)", ["run", "hello"])):
            runs = [importtime(argv, root, env) for _ in range(args.repeat)]
            total = statistics.median(t for t, _ in runs)
            nodes = runs[-1][1]
            modules = {n.name.split(".")[0] for n in nodes}
            dtrun_modules = sorted({n.name for n in nodes if n.name.startswith("dtrun")})
            print(f"### {label}: {total:.0f} ms of imports (median of {args.repeat}), {len(nodes)} modules")
            flagged = [m for m in ("pydantic", "docker", "jinja2") if m in modules]
            print(f"pydantic/docker/jinja2 imported: {', '.join(flagged) or 'none'}\n")
            callers = who_imports(argv, root, env)
            print("| package | cumulative | first pulled in by (dtrun file:line, innermost first) |\n|---|---|---|")
            for name, ms, where in heavy(nodes, args.top):
                print(f"| {name} | {ms:.0f} ms | {callers.get(name) or where} |")
            print(f"\ndtrun modules imported: {', '.join(dtrun_modules)}\n")
    finally:
        from _common import remove_store_objects

        for store in (base / "store", base / "store-before"):
            remove_store_objects(store)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
