"""`setup:` on a `lab` workflow (issue 12): its commands run before JupyterLab starts, in the shell the
server then replaces, so a file it writes is in the lab's file browser and a variable it exports is in
the lab's kernels. Checked through the running lab itself: its REST API and a kernel, with its token.

Uses the lab image the dev-environment tests build (same workflow shape, so the same cached image)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.devenv import DevEnv, workflow_file
from tests.conftest import SESSION, DtrunRunner

pytestmark = pytest.mark.xdist_group("devenv")


def api(base: str, token: str, path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(f"{base}{path}?token={token}", method=method,
                                     data=b"{}" if method == "POST" else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def kernel_prints(netloc: str, token: str, kernel: str, code: str) -> str:
    """What `code` prints in the lab's kernel, over the kernel's websocket (Jupyter's messaging protocol)."""
    import websocket

    ws = websocket.create_connection(f"ws://{netloc}/api/kernels/{kernel}/channels?token={token}", timeout=60)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test", "session": msg_id,
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        printed = ""
        while True:
            message = json.loads(ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["msg_type"]
            if kind == "stream":
                printed += message["content"]["text"]
            elif kind == "error":
                raise AssertionError(f"the kernel failed: {message['content']}")
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                return printed
    finally:
        ws.close()


def test_setup_on_lab_reaches_the_running_lab(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    mark = f"set-{SESSION}"
    root = make_project({".dtrun/workflows.yaml": workflow_file("ide", "lab", (
        "    setup:\n"
        "      - mkdir -p notes\n"
        f"      - echo 'written by setup {mark}' > notes/from-setup.txt\n"
        f"      - export DTRUN_SETUP_MARK={mark}\n"))})
    with DevEnv(dtrun, root, "ide") as env:
        url = env.url()
        env.wait_answers(url)
        parts = urllib.parse.urlsplit(url)
        token = urllib.parse.parse_qs(parts.query)["token"][0]
        base = f"http://{parts.netloc}"
        listing = api(base, token, "/api/contents/notes")
        assert [f["name"] for f in listing["content"]] == ["from-setup.txt"], listing
        file = api(base, token, "/api/contents/notes/from-setup.txt")
        assert file["content"] == f"written by setup {mark}\n", file
        kernel = api(base, token, "/api/kernels", method="POST")["id"]
        try:
            printed = kernel_prints(parts.netloc, token, kernel,
                                    "import os; print(os.environ.get('DTRUN_SETUP_MARK'), os.getcwd())")
        finally:
            urllib.request.urlopen(urllib.request.Request(f"{base}/api/kernels/{kernel}?token={token}",
                                                          method="DELETE"), timeout=30).close()
        assert printed == f"{mark} /workspace\n"
        job = env.stop()
    assert job["state"] == "STOPPED"
