"""A small cron matcher (five fields: minute hour day-of-month month day-of-week).

Supports `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n` and `a-b/n`, names of months and days,
and the shorthands `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`. As in Vixie cron, when both
day fields are restricted a day matches if either does.
"""

from __future__ import annotations

from datetime import datetime

from dtrun.errors import SpecError
from dtrun.structs import struct

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
           ("day of week", 0, 7))
_NAMES = {
    3: {n: i + 1 for i, n in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                        "nov", "dec"))},
    4: {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
}
_SHORT = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
          "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}


@struct(frozen=True)
class Cron:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    def matches(self, when: datetime) -> bool:
        if when.minute not in self.minutes or when.hour not in self.hours or when.month not in self.months:
            return False
        day_ok = when.day in self.days
        weekday_ok = (when.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok


def parse_cron(text: str) -> Cron:
    expr = _SHORT.get(text.strip().lower(), text)
    parts = expr.split()
    if len(parts) != 5:
        raise SpecError(f"cron '{text}' must have 5 fields (minute hour day-of-month month day-of-week)",
                        hint="e.g. '*/15 * * * *' (every 15 minutes) or '0 3 * * 1' (Mondays at 03:00)")
    sets = [_field(part, i, text) for i, part in enumerate(parts)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(text, sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] == "*", parts[4] == "*")


def _field(part: str, index: int, text: str) -> frozenset[int]:
    name, low, high = _FIELDS[index]
    names = _NAMES.get(index, {})
    values: set[int] = set()

    def number(token: str) -> int:
        token = token.lower()
        if token in names:
            return names[token]
        if not token.isdigit():
            raise SpecError(f"cron '{text}': '{token}' is not a valid {name}")
        value = int(token)
        if not low <= value <= high:
            raise SpecError(f"cron '{text}': {name} {value} is out of range {low}-{high}")
        return value

    for item in part.split(","):
        body, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise SpecError(f"cron '{text}': step '{step_text}' must be a positive number")
            step = int(step_text)
        if body == "*":
            start, end = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            start, end = number(a), number(b)
            if start > end:
                raise SpecError(f"cron '{text}': range {body} runs backwards")
        else:
            start = number(body)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values)
