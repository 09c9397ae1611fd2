"""Actions from everywhere a flow can name them: a git repository at a tag, built-ins, scaffolds."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import BUSYBOX_IMAGE, DtrunRunner, git, write_files


def make_action_repo(root: Path, tag: str, message: str) -> None:
    write_files(root, {
        "action-datatorch.yaml": f"""
            name: greet
            inputs:
              who: {{type: string, default: world}}
            outputs:
              greeting: {{}}
            runs:
              using: shell
              image: {BUSYBOX_IMAGE}
              script: greet.sh
            """,
        "greet.sh": f"""
            echo "{message}, $INPUT_WHO"
            echo "greeting={message}" >> "$DTRUN_OUTPUT"
            """,
    })
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    git(root, "tag", tag)


def test_action_from_a_git_repository_at_a_tag(tmp_path: Path, dtrun: DtrunRunner) -> None:
    server = tmp_path / "git"
    repo = server / "acme" / "greet"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    make_action_repo(repo, "v1", "hello")
    make_action_repo(repo, "v2", "bonjour")  # main moves on; v1 must still give v1
    bare = server / "acme" / "empty"
    bare.mkdir()
    git(bare, "init", "-q", "-b", "main")
    write_files(bare, {"README": "no action here\n"})
    git(bare, "add", "-A")
    git(bare, "commit", "-q", "-m", "x")
    git(bare, "tag", "v1")

    write_files(tmp_path / "project", {
        "flow.yaml": """
            name: remote
            jobs:
              hi:
                steps:
                  - id: one
                    action: acme/greet@v1
                    inputs: {who: dtrun}
                  - id: two
                    action: {name: acme/greet, tag: v2}
            """,
        "bad.yaml": """
            name: bad
            jobs:
              hi:
                steps:
                  - action: acme/empty@v1
            """,
    })
    env = {"DTRUN_ACTIONS_GIT_BASE": f"file://{server}"}
    summary = tmp_path / "s.json"
    result = dtrun("flow", "run", str(tmp_path / "project/flow.yaml"), "--json-file", str(summary), env=env)
    assert result.code == 0, result.output
    assert "[hi/one] hello, dtrun" in result.stdout
    assert "[hi/two] bonjour, world" in result.stdout
    steps = json.loads(summary.read_text())["jobs"]["hi"]["steps"]
    assert [s["outputs"] for s in steps] == [{"greeting": "hello"}, {"greeting": "bonjour"}]

    # Cached per repository and tag: a second run works with the server gone.
    (server / "acme" / "greet").rename(server / "acme" / "moved")
    result = dtrun("flow", "run", str(tmp_path / "project/flow.yaml"), env=env)
    assert result.code == 0, result.output

    result = dtrun("flow", "run", str(tmp_path / "project/bad.yaml"), env=env)
    assert result.code == 2
    assert "has no action-datatorch.yaml" in result.stderr and "acme/empty" in result.stderr

    result = dtrun("flow", "run", str(tmp_path / "project/bad.yaml"),
                   env={"DTRUN_ACTIONS_GIT_BASE": f"file://{tmp_path}/nowhere"})
    assert result.code == 2 and "cannot clone" in result.stderr and "at tag 'v1'" in result.stderr


def test_builtin_python_and_download_actions(tmp_path: Path, dtrun: DtrunRunner) -> None:
    write_files(tmp_path, {
        "flow.yaml": """
            name: builtins
            jobs:
              data:
                steps:
                  - name: make
                    action: dtrun/shell
                    inputs:
                      run: mkdir -p src && printf 'a,b\\n1,2\\n' > src/table.csv
                  - id: fetch
                    action: dtrun/download
                    inputs:
                      url: file:///workspace/src/table.csv
                      path: data/table.csv
                  - id: count
                    action: dtrun/python
                    inputs:
                      script: |
                        import os, sys
                        rows = open(sys.argv[1]).read().splitlines()
                        print("rows:", len(rows), "args:", sys.argv[1:])
                        open(os.environ["DTRUN_OUTPUT"], "a").write(f"rows={len(rows)}\\n")
                      args: ["${{ steps.fetch.outputs.path }}", 2]
            """,
    })
    summary = tmp_path / "s.json"
    result = dtrun("flow", "run", str(tmp_path / "flow.yaml"), "--json-file", str(summary))
    assert result.code == 0, result.output
    assert "[data/fetch] downloaded file:///workspace/src/table.csv (8 bytes)" in result.stdout
    assert "[data/count] rows: 2 args: ['/workspace/data/table.csv', '2']" in result.stdout
    steps = json.loads(summary.read_text())["jobs"]["data"]["steps"]
    assert steps[1]["outputs"]["size"] == "8" and len(steps[1]["outputs"]["sha256"]) == 64
    assert steps[2]["outputs"] == {"rows": "2"}


def test_action_init_then_build(tmp_path: Path, dtrun: DtrunRunner, docker_client: object) -> None:
    folder = tmp_path / "hello"
    result = dtrun("action", "init", str(folder), "--kind", "shell")
    assert result.code == 0, result.output
    assert (folder / "action-datatorch.yaml").is_file() and (folder / "run.sh").is_file()
    again = dtrun("action", "init", str(folder))
    assert again.code == 2 and "already exists" in again.stderr

    result = dtrun("action", "build", str(folder))
    assert result.code == 0, result.output
    image = result.stdout.strip()
    assert image.startswith("dtrun-action/hello:")
    labels = docker_client.images.get(image).labels  # type: ignore[attr-defined]
    assert json.loads(labels["dev.dtrun.action"])["name"] == "hello"
    out = docker_client.containers.run(image, remove=True,  # type: ignore[attr-defined]
                                       environment={"INPUT_GREETING": "hi", "DTRUN_OUTPUT": "/tmp/o"})
    assert out.decode().strip() == "hi from hello"


def test_dockerfile_action_is_built_and_run(tmp_path: Path, dtrun: DtrunRunner) -> None:
    write_files(tmp_path, {
        "actions/img/action-datatorch.yaml": """
            name: img
            inputs:
              n: {type: integer, default: 2}
            runs:
              using: docker
              dockerfile: Dockerfile
              args: ["--times", "${{ inputs.n }}"]
            """,
        "actions/img/Dockerfile": f"""
            FROM {BUSYBOX_IMAGE}
            COPY bin/entry.sh /entry.sh
            ENTRYPOINT ["sh", "/entry.sh"]
            """,
        "actions/img/bin/entry.sh": """
            echo "args: $* input: $INPUT_N"
            echo "done=yes" >> "$DTRUN_OUTPUT"
            """,
        "flow.yaml": """
            name: docker-action
            jobs:
              j:
                steps:
                  - id: a
                    action: ./actions/img
                    inputs: {n: 5}
            """,
    })
    result = dtrun("flow", "run", str(tmp_path / "flow.yaml"), "--json")
    assert result.code == 0, result.output
    assert "[j/a] args: --times 5 input: 5" in result.stderr
    assert json.loads(result.stdout)["jobs"]["j"]["steps"][0]["outputs"] == {"done": "yes"}


def publish(server: Path, repo: str, files: dict[str, str], tag: str = "v1") -> None:
    """A git repository `server/<repo>` holding `files` at `tag`, like a published action."""
    root = server / repo
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    write_files(root, files)
    for name in files:
        if name.endswith(".sh"):
            (root / name).chmod(0o755)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "publish")
    git(root, "tag", tag)


def test_datatorch_published_style_actions(tmp_path: Path, dtrun: DtrunRunner) -> None:
    """Actions written as DataTorch's documentation shows them run unchanged: the SDK reads the inputs from
    the last argument, `set_output` keeps the JSON type, a typed output flows into later steps and into
    the --json summary as a number; `datatorch/x@tag` is the datatorch-actions organisation."""
    server = tmp_path / "git"
    publish(server, "datatorch-actions/add", {
        "action-datatorch.yaml": """
            $schema: https://datatorch.io/schema/action.v1.json
            name: Python Add
            author: dtrun tests
            description: Adds two numbers with DataTorch's SDK.
            cache: true
            env:
              SERVICE_TOKEN: a token the action reads
            inputs:
              a: {type: integer, required: true, description: First number}
              b: {type: integer, default: 2}
              label: {type: string, default: "${{ step.name }} on ${{ machine.name }}"}
              old: {type: string, deprecationMessage: use `a`}
            outputs:
              sum: {type: integer, description: a + b}
              token_seen: {type: boolean}
            runs:
              using: python
              main: add.py
            """,
        "add.py": """
            import os
            import datatorch

            if __name__ == "__main__":
                inputs = datatorch.get_inputs()
                a: int = inputs.get("a")
                b: int = inputs.get("b")
                print("inputs", sorted(inputs.items()), "label:", inputs["label"], "env a:", os.environ["INPUT_A"])
                datatorch.set_output("sum", a + b)
                datatorch.set_output("token_seen", os.environ.get("SERVICE_TOKEN") == "tok-123")
            """,
    })
    publish(server, "acme/tools", {
        "action-datatorch.yaml": """
            name: shout
            inputs:
              x: {type: integer, required: true}
            runs:
              using: shell
              image: BUSY
              script: shout.sh
            """.replace("BUSY", BUSYBOX_IMAGE),
        "shout.sh": """
            #!/bin/sh
            echo "x is $INPUT_X, doubled $((INPUT_X * 2))"
            """,
        "report.yaml": """
            name: report
            inputs:
              total: {type: float}
            outputs:
              count: {type: integer}
              where: {}
            runs:
              using: script
              image: BUSY
              script: bin/report.sh --final
            """.replace("BUSY", BUSYBOX_IMAGE),
        "bin/report.sh": """
            echo "report $1 total=$INPUT_TOTAL temp=$TEMP_DIR"
            echo "count=3" >> "$DTRUN_OUTPUT"
            """,
        "cmd.yaml": """
            name: listing
            inputs:
              path: {type: string, default: /workspace}
            runs:
              using: cmd
              image: BUSY
              command: test -d "$INPUT_PATH" &&
                echo "listed ${{ inputs.path }} for ${{ action.name }}@${{ action.tag }}"
            """.replace("BUSY", BUSYBOX_IMAGE),
    })
    write_files(tmp_path / "project", {
        "flow.yaml": """
            name: published
            jobs:
              calc:
                outputs: {total: "${{ steps.add.outputs.sum }}"}
                steps:
                  - id: add
                    name: Add
                    action: datatorch/add@v1
                    inputs: {a: 40, old: x}
                  - id: shout
                    action: acme/tools@v1
                    inputs: {x: "${{ steps.add.outputs.sum }}"}
                  - id: report
                    action: {name: acme/tools, tag: v1, file: report.yaml}
                    env: {TEMP_DIR: "${{ directory.temp }}"}
                    inputs: {total: "${{ steps.add.outputs.sum }}"}
                  - id: list
                    action: {name: acme/tools, tag: v1, file: cmd.yaml}
                  - id: check
                    run: test "${{ steps.add.outputs.sum }}" = 42 && echo "project ${{ pipeline.projectId }} end"
            """,
    })
    summary = tmp_path / "s.json"
    result = dtrun("flow", "run", str(tmp_path / "project/flow.yaml"), "--json-file", str(summary),
                   "--secret", "SERVICE_TOKEN=tok-123", env={"DTRUN_ACTIONS_GIT_BASE": f"file://{server}"})
    assert result.code == 0, result.output
    out = result.stdout
    assert "[calc/add] inputs [('a', 40), ('b', 2), ('label', 'Add on " in out and "env a: 40" in out
    assert "[calc/shout] x is 42, doubled 84" in out
    assert "[calc/report] report --final total=42.0 temp=/tmp" in out
    assert "[calc/list] listed /workspace for listing@v1" in out
    assert "[calc/check] project  end" in out
    assert "input 'old' of action 'Python Add' is deprecated: use `a`" in result.stderr
    assert "'pipeline.projectId' needs the DataTorch server" in result.stderr
    calc = json.loads(summary.read_text())["jobs"]["calc"]
    assert calc["outputs"] == {"total": 42}
    steps = {s["id"]: s for s in calc["steps"]}
    assert steps["add"]["outputs"] == {"sum": 42, "token_seen": True}
    assert steps["report"]["outputs"] == {"count": 3}
    assert "tok-123" not in out + result.stderr

    # `cache: true` in the manifest: the same action, version and inputs reuse the outputs (typed).
    again = dtrun("flow", "run", str(tmp_path / "project/flow.yaml"), "--json-file", str(summary),
                  "--secret", "SERVICE_TOKEN=tok-123", env={"DTRUN_ACTIONS_GIT_BASE": f"file://{server}"})
    assert again.code == 0, again.output
    assert "[calc/add] outputs reused from the cache" in again.stderr and "[calc/add] inputs" not in again.stdout
    assert "[calc/shout] x is 42, doubled 84" in again.stdout
    steps = {s["id"]: s for s in json.loads(summary.read_text())["jobs"]["calc"]["steps"]}
    assert steps["add"]["outputs"] == {"sum": 42, "token_seen": True}


def test_bad_manifest_is_a_positioned_error_not_a_traceback(tmp_path: Path, dtrun: DtrunRunner) -> None:
    server = tmp_path / "git"
    publish(server, "acme/broken", {
        "action-datatorch.yaml": """
            name: broken
            inputs:
              a: {type: number}
              b: {tpye: string}
            runs:
              using: node
              main: index.js
            """,
    })
    write_files(tmp_path, {"flow.yaml": """
        name: f
        jobs:
          j:
            steps:
              - action: {name: acme/broken, tag: v1, git: "GIT"}
        """.replace("GIT", f"file://bob:hunter2@localhost{server}/acme/broken")})
    result = dtrun("flow", "run", str(tmp_path / "flow.yaml"))
    assert result.code == 2, result.output
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr
    write_files(tmp_path, {"ok.yaml": """
        name: f
        jobs:
          j:
            steps:
              - action: acme/broken@v1
        """})
    result = dtrun("flow", "run", str(tmp_path / "ok.yaml"), env={"DTRUN_ACTIONS_GIT_BASE": f"file://{server}"})
    assert result.code == 2, result.output
    assert "Traceback" not in result.stderr
    assert "action-datatorch.yaml:3:" in result.stderr and "inputs.a.type" in result.stderr
    assert "did you mean 'type'" in result.stderr and "'runs.using': `node` is declared" in result.stderr


def test_python_action_scaffold_builds_an_image_that_runs_like_datatorch(tmp_path: Path, dtrun: DtrunRunner,
                                                                         docker_client: object) -> None:
    """`action init --kind python` writes an SDK-style action; its built image takes the inputs JSON as its
    last argument, as DataTorch's agent passed them."""
    folder = tmp_path / "summer"
    assert dtrun("action", "init", str(folder), "--kind", "python").code == 0
    result = dtrun("action", "build", str(folder))
    assert result.code == 0, result.output
    out = docker_client.containers.run(result.stdout.strip(), ['{"count": 4}'], remove=True)  # type: ignore[attr-defined]
    assert out.decode().splitlines() == ["summer: sum of range(4) = 6", "::total::6"]
