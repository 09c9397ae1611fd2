"""What the agent wrote to the store, read back by the client: `agent.json` and the growing `logs.txt`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from dtrun.agent.formats import LOG_FILE, STATUS_FILE, per_node
from dtrun.store import Store


def agent_status(store: Store, job_id: str, repo: str | None = None, node: int = 0) -> dict[str, Any] | None:
    """The agent's record of the job (of one of its nodes), or None before the agent wrote one (or if it is
    damaged)."""
    try:
        data = json.loads(store.read_bytes(store.job_path(job_id, per_node(STATUS_FILE, node), repo=repo)))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def follow_log(store: Store, job_id: str, finished: Callable[[], bool], *, follow: bool, repo: str | None = None,
               poll: float = 1.0) -> Iterator[bytes]:
    """The stored log's lines (`<time> <text>\\n`), new ones as the agent uploads them while `follow`.

    The agent uploads the whole file each time, so this remembers how many bytes it has given and
    yields only complete lines after them; once the job has finished, one last read gives the rest.
    """
    path = store.job_path(job_id, LOG_FILE, repo=repo)
    given = 0
    while True:
        done = finished() if follow else True
        try:
            data = store.read_bytes(path)
        except FileNotFoundError:
            data = b""
        end = len(data) if done else data.rfind(b"\n") + 1
        if end > given:
            yield from data[given:end].splitlines(keepends=True)
            given = end
        if done:
            return
        time.sleep(poll)
