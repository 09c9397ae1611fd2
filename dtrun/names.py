"""Run names people can say aloud (`fast-rabbit-1`), unique within a repository's store."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

ADJECTIVES = (
    "amber", "bold", "brave", "bright", "calm", "clever", "cool", "crisp", "eager", "fast", "fierce", "gentle",
    "glad", "grand", "happy", "keen", "kind", "lively", "lucky", "mellow", "merry", "mighty", "nimble",
    "noble", "polite", "proud", "quick", "quiet", "rapid", "shiny", "silent", "smart", "snowy", "steady",
    "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty", "young",
)
ANIMALS = (
    "badger", "bat", "bear", "beaver", "bison", "cat", "cobra", "crab", "crane", "cricket", "deer", "dolphin",
    "eagle", "falcon", "ferret", "finch", "fox", "frog", "gecko", "goat", "hare", "hawk", "heron", "horse",
    "ibis", "jaguar", "koala", "lemur", "lion", "lynx", "mole", "moose", "otter", "owl", "panda", "puma",
    "rabbit", "raven", "seal", "shark", "sloth", "swan", "tiger", "turtle", "walrus", "whale", "wolf", "yak",
)


def sanitize(text: str) -> str:
    """A string made safe for Docker object names."""
    cleaned = re.sub(r"[^a-zA-Z0-9_.-]+", "-", text).strip("-.") or "x"
    return cleaned[:40]


def new_run_name(existing: Iterable[str], rng: random.Random | None = None) -> str:
    taken = set(existing)
    pick = rng or random.SystemRandom()
    for _ in range(100):
        stem = f"{pick.choice(ADJECTIVES)}-{pick.choice(ANIMALS)}"
        number = 1
        while f"{stem}-{number}" in taken:
            number += 1
        if number <= 9:
            return f"{stem}-{number}"
    return f"run-{pick.getrandbits(32):08x}"
