"""The streaming masker: the same result however the output is cut into chunks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dtrun.masking import MASK, Masker, patterns


def stream(masker: Masker, chunks: list[bytes]) -> bytes:
    return b"".join(masker.feed(c) for c in chunks) + masker.flush()


def test_every_occurrence_is_masked() -> None:
    masker = Masker(["hunter2"])
    assert masker.mask(b"pw=hunter2 again hunter2\n") == b"pw=*** again ***\n"


def test_multi_line_secret_is_masked_line_by_line() -> None:
    key = "-----BEGIN KEY-----\nAAAAbbbbCCCC\n-----END KEY-----\n"
    out = Masker([key]).mask(b"line AAAAbbbbCCCC\n-----BEGIN KEY-----\n")
    assert b"AAAA" not in out and b"BEGIN" not in out
    assert out == b"line ***\n***\n"


def test_no_secrets_passes_through() -> None:
    masker = Masker([])
    assert masker.feed(b"abc") == b"abc" and masker.flush() == b""


def test_longest_secret_wins() -> None:
    assert patterns(["abc", "abcdef"]) == [b"abcdef", b"abc"]
    assert stream(Masker(["abc", "abcdef"]), [b"xxabc", b"def", b"yy"]) == b"xx***yy"


def test_a_prefix_that_does_not_complete_is_released() -> None:
    masker = Masker(["secret"])
    assert masker.feed(b"a secr") == b"a "
    assert masker.feed(b"et! sec") == b"***! "
    assert masker.flush() == b"sec"


@settings(max_examples=60, deadline=None)
@given(secret=st.text(alphabet="abcxyz\n", min_size=1, max_size=12).filter(lambda s: s.strip()),
       prefix=st.binary(max_size=20), suffix=st.binary(max_size=20))
def test_split_at_every_position(secret: str, prefix: bytes, suffix: bytes) -> None:
    """Secret-bearing output cut at every position (and into single bytes) masks like the whole."""
    text = prefix + secret.encode() + b" | " + secret.encode() + suffix
    whole = Masker([secret]).mask(text)
    for cut in range(len(text) + 1):
        assert stream(Masker([secret]), [text[:cut], text[cut:]]) == whole
    assert stream(Masker([secret]), [bytes([b]) for b in text]) == whole
    for line in patterns([secret]):
        assert line not in whole.replace(MASK, b"\0")
