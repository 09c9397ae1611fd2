from datetime import datetime

import pytest

from dtrun.errors import SpecError
from dtrun.flows.cron import parse_cron


def test_every_15_minutes() -> None:
    cron = parse_cron("*/15 * * * *")
    assert cron.matches(datetime(2026, 1, 1, 10, 45))
    assert not cron.matches(datetime(2026, 1, 1, 10, 46))


def test_ranges_lists_and_names() -> None:
    cron = parse_cron("0 9-17/4 * jan,jul mon-fri")
    assert cron.matches(datetime(2026, 1, 5, 13, 0))  # a Monday in January
    assert not cron.matches(datetime(2026, 1, 4, 13, 0))  # Sunday
    assert not cron.matches(datetime(2026, 2, 2, 13, 0))  # February
    assert not cron.matches(datetime(2026, 1, 5, 11, 0))  # 11 is not 9 + 4n


def test_day_fields_or_when_both_restricted() -> None:
    cron = parse_cron("0 0 1 * 0")  # the 1st, or any Sunday (Vixie cron)
    assert cron.matches(datetime(2026, 3, 1, 0, 0))
    assert cron.matches(datetime(2026, 3, 8, 0, 0))  # Sunday
    assert not cron.matches(datetime(2026, 3, 9, 0, 0))


def test_shorthand_and_sunday_as_7() -> None:
    assert parse_cron("@daily").matches(datetime(2026, 5, 5, 0, 0))
    assert parse_cron("0 0 * * 7").matches(datetime(2026, 3, 8, 0, 0))


@pytest.mark.parametrize("text, message", [
    ("* * * *", "must have 5 fields"),
    ("61 * * * *", "minute 61 is out of range"),
    ("*/0 * * * *", "positive number"),
    ("5-1 * * * *", "runs backwards"),
    ("* * * foo *", "'foo' is not a valid month"),
])
def test_bad_cron(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_cron(text)
