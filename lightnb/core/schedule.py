"""Cron schedules for ``flow.schedule(...)``: pure — the time is always given.

The reference's syntax (croniter's): five fields ``minute hour day-of-month month day-of-week``, each ``*``,
a number, a range ``a-b``, a list ``a,b``, a step ``*/n`` or ``a-b/n`` (months and weekdays also by name:
``jan``, ``mon``); an optional sixth field gives the seconds (croniter's extension, handy for tests); and the
aliases ``hourly``, ``daily``/``midnight``, ``weekly``, ``monthly``, ``yearly``/``annually``. Like cron, when
both day fields are restricted a day matches either. Times are the machine's local time.

>>> cron = parse_cron("*/5 * * * *")
>>> from datetime import datetime
>>> datetime.fromtimestamp(cron.next_after(datetime(2024, 1, 1, 10, 2).timestamp()))
datetime.datetime(2024, 1, 1, 10, 5)
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

ALIASES = {
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "midnight": "0 0 * * *",
    "weekly": "0 0 * * 0",
    "monthly": "0 0 1 * *",
    "yearly": "0 0 1 1 *",
    "annually": "0 0 1 1 *",
}
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
# (name, low, high, names) of each field, in the order they are written
_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}), ("month", 1, 12, _MONTHS),
           ("day of week", 0, 7, _DAYS), ("second", 0, 59, {}))
# How far ahead a schedule is looked for before it is called impossible (e.g. "0 0 30 2 *").
_HORIZON = timedelta(days=366 * 5)


class CronError(ValueError):
    """A cron expression lightnb cannot read."""


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression: the allowed values of each field."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    seconds: frozenset[int] = frozenset({0})
    any_day: bool = True  # day of month is "*"
    any_weekday: bool = True  # day of week is "*"

    def day_matches(self, moment: datetime) -> bool:
        by_day = moment.day in self.days
        by_weekday = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return by_day and by_weekday
        return by_day or by_weekday  # cron: both restricted, either one will do

    def matches(self, moment: datetime) -> bool:
        return (moment.second in self.seconds and moment.minute in self.minutes and moment.hour in self.hours
                and moment.month in self.months and self.day_matches(moment))

    def next_after(self, timestamp: float) -> float:
        """The first time strictly after ``timestamp`` at which the schedule fires."""
        moment = datetime.fromtimestamp(int(timestamp)) + timedelta(seconds=1)
        end = moment + _HORIZON
        while moment < end:
            if moment.month not in self.months:
                year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
                moment = datetime(year, month, 1)
            elif not self.day_matches(moment):
                moment = datetime(moment.year, moment.month, moment.day) + timedelta(days=1)
            elif moment.hour not in self.hours:
                moment = moment.replace(minute=0, second=0) + timedelta(hours=1)
            elif moment.minute not in self.minutes:
                moment = moment.replace(second=0) + timedelta(minutes=1)
            elif moment.second not in self.seconds:
                moment += timedelta(seconds=1)
            else:
                return moment.timestamp()
        raise CronError(f"the schedule {self.expression!r} never fires (no matching time within 5 years)")


@lru_cache(maxsize=256)
def parse_cron(expression: str) -> Cron:
    """Parse a cron expression or alias; :class:`CronError` naming the bad field otherwise."""
    if not isinstance(expression, str):
        raise CronError(f"a schedule is a cron expression such as '*/5 * * * *' or 'hourly', not {expression!r}")
    text = ALIASES.get(expression.strip().lower(), expression.strip())
    parts = text.split()
    if len(parts) not in (5, 6):
        raise CronError(
            f"{expression!r} is not a cron expression: it needs 5 fields (minute hour day-of-month month "
            f"day-of-week; optionally seconds as a 6th), e.g. '*/5 * * * *', or one of {', '.join(ALIASES)}"
        )
    values = [_field(part, *spec, expression) for part, spec in zip(parts, _FIELDS, strict=False)]
    weekdays = frozenset(d % 7 for d in values[4])
    return Cron(expression, values[0], values[1], values[2], values[3], weekdays,
                values[5] if len(values) == 6 else frozenset({0}), parts[2] == "*", parts[4] == "*")


def _field(text: str, name: str, low: int, high: int, names: dict[str, int], expression: str) -> frozenset[int]:
    allowed: set[int] = set()
    for item in text.split(","):
        try:
            allowed |= _item(item.lower(), low, high, names)
        except ValueError:
            raise CronError(f"the {name} field {text!r} of the schedule {expression!r} is not valid: use *, a "
                            f"number {low}-{high}, a range a-b, a list a,b or a step */n") from None
    return frozenset(allowed)


def _item(item: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    base, _, step_text = item.partition("/")
    step = int(step_text) if step_text else 1
    if step < 1:
        raise ValueError(item)
    if base == "*":
        first, last = low, high
    elif "-" in base:
        a, b = base.split("-", 1)
        first, last = _number(a, names), _number(b, names)
    else:
        first = _number(base, names)
        last = high if step_text else first
    if not low <= first <= last <= high:
        raise ValueError(item)
    return set(range(first, last + 1, step))


def _number(text: str, names: dict[str, int]) -> int:
    return names[text] if text in names else int(text)


@dataclass
class ScheduleEntry:
    cron: Cron
    next_fire: float
    fired_pass: int | None = None


@dataclass
class Schedules:
    """The schedules of an app (or of a flow run with no app): per call site, when each fires next.

    :meth:`check` is what ``flow.schedule(...)`` asks on a pass: a new schedule fires at once (the
    reference's rule) and then at each time its cron expression gives; every call of the same schedule in the
    pass in which it fired answers ``True``.
    """

    entries: dict[str, ScheduleEntry] = field(default_factory=dict)

    def check(self, key: str, expression: str, start_time: datetime | None, now: float, pass_id: int) -> bool:
        entry = self.entries.get(key)
        if entry is None:
            cron = parse_cron(expression)
            if start_time is not None and start_time.timestamp() > now:
                self.entries[key] = ScheduleEntry(cron, cron.next_after(start_time.timestamp() - 1))
                return False
            self.entries[key] = ScheduleEntry(cron, cron.next_after(now), pass_id)
            return True
        if entry.fired_pass == pass_id:
            return True
        if now >= entry.next_fire:
            entry.next_fire = entry.cron.next_after(now)
            entry.fired_pass = pass_id
            return True
        return False

    def earliest(self) -> float | None:
        """When the next schedule fires (the app's loop must run a pass then)."""
        return min((entry.next_fire for entry in self.entries.values()), default=None)
