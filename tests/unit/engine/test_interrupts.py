"""Ctrl+C during a run is counted by a handler and acted on between two polls, never raised inside the
scheduler's wait (where a KeyboardInterrupt could break a condition's lock: a traceback, jobs not stopped)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from dtrun.engine.runner import _counting_interrupts


def test_ctrl_c_is_counted_not_raised_and_the_default_comes_back() -> None:
    pressed = [0]
    with _counting_interrupts(pressed):
        for _ in range(2):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs in this thread at its next bytecode
        threading.Event().wait(0.05)  # a wait like the scheduler's: nothing is raised inside it
    assert pressed == [2]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)


def test_a_handler_the_caller_set_is_left_alone() -> None:
    """The Python API in a program with its own SIGINT handler: dtrun does not replace it."""
    seen: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        pressed = [0]
        with _counting_interrupts(pressed):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        assert pressed == [0] and seen == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)
