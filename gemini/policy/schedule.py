"""Cron schedules that change a policy's min/max while active.

Cron arithmetic uses APScheduler's `CronTrigger` (time zones and DST handled there), with the
day-of-week field translated from crontab numbering (0/7 = Sunday) to APScheduler 3's (0 = Monday).
Known cron differences, documented in docs/engine.md: a start inside a spring-forward gap fires
when the clock resumes at the same minute an hour later; a start inside a repeated fall-back hour
fires twice; when both day-of-month and day-of-week are restricted, both must match (crontab
fires when either does). A schedule is active for [start, start + duration).
Pure: `now` is always an argument. Imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

if TYPE_CHECKING:
    from gemini.policy.spec import Schedule


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _day(token: str) -> int:
    low = token.lower()
    if low in _DAYS:
        return _DAYS.index(low)
    if not token.isdigit() or int(token) > 7:
        raise ValueError(f"bad day of week {token!r} (0-7 or sun..sat)")
    return int(token) % 7


def crontab_days(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday, 1 = Monday, names allowed, lists, ranges,
    steps) as APScheduler 3 day names. APScheduler 3 numbers days from 0 = Monday, so passing
    the field through unchanged would shift every numeric weekday by one ("1-5" would mean
    Tuesday to Saturday)."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        if step_text and (not step_text.isdigit() or int(step_text) == 0):
            raise ValueError(f"bad step in day of week {part!r}")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            a, _, b = span.partition("-")
            first, last = _day(a), _day(b)
            if b.strip() == "7":
                last = 7
        else:
            first = last = _day(span)
            if step_text:
                last = 6
        if first > last:
            raise ValueError(f"bad day-of-week range {span!r}")
        days.update(d % 7 for d in range(first, last + 1, step))
    if len(days) == 7:
        return "*"
    # APScheduler's order (mon first) keeps the list readable; names avoid its numbering
    return ",".join(_DAYS[d] for d in sorted(days, key=lambda d: (d - 1) % 7))


_NEXT: dict[tuple[str, str], tuple[datetime, datetime]] = {}
_MEMO_SPAN = timedelta(days=7)


@lru_cache(maxsize=256)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


# cron's nicknames, as their five-field equivalents (Vixie cron; @reboot has no meaning here)
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def expand(cron: str) -> str:
    """`cron` with a nickname (@daily, ...) replaced by its five fields."""
    return MACROS.get(cron.strip(), cron)


@lru_cache(maxsize=1024)
def _trigger(cron: str, tz: str) -> CronTrigger:
    minute, hour, day, month, dow = expand(cron).split()
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_days(dow),
        timezone=ZoneInfo(tz),
    )


def check_cron(cron: str) -> None:
    """Raise ValueError with a readable message when `cron` is not a five-field expression."""
    fields = expand(cron).split()
    if len(fields) == 1 and fields[0].startswith("@"):
        known = ", ".join(MACROS)
        raise ValueError(f"unknown cron nickname {cron!r} (known: {known})")
    if len(fields) != 5:
        raise ValueError(
            f"cron must have 5 fields (minute hour day month day-of-week), got {len(fields)}: {cron!r}"
        )
    try:
        trigger = _trigger(cron, "UTC")
    except (ValueError, KeyError) as exc:
        raise ValueError(f"bad cron expression {cron!r}: {exc}") from None
    # a day that no month has (30 February, 31 April, ...): from 2000 (a leap year) on, every
    # calendar repeats, so no fire time up to the year 9999 means none ever
    if trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=UTC)) is None:
        raise ValueError(f"cron {cron!r} never fires (no month has that day)")


@dataclass(frozen=True, slots=True)
class Bounds:
    """Effective min/max at one instant, and the schedules that set them."""

    min_replicas: int
    max_replicas: int
    active: tuple[str, ...] = ()


def _same_offset(a: datetime, b: datetime, zone: ZoneInfo) -> bool:
    """Both instants in one UTC offset of `zone`. A start inside a spring-forward gap carries
    the old offset, so each is normalized through UTC first."""
    offset = a.astimezone(UTC).astimezone(zone).utcoffset()
    return (
        offset == a.utcoffset() == b.utcoffset() == b.astimezone(UTC).astimezone(zone).utcoffset()
    )


def first_start_at_or_after(cron: str, tz: str, since: datetime) -> datetime | None:
    """The first start of `cron` in `tz` at or after `since` (APScheduler's answer).

    Memoized without changing the answer: an earlier answer `start` for `lo` is reused for any
    `since` in [lo, start] only when no UTC-offset change lies between (same offset, under a
    week apart), because within one offset there is no start in [lo, start) by construction.
    """
    key = (cron, tz)
    hit = _NEXT.get(key)
    if hit is not None and hit[0] <= since <= hit[1]:
        return hit[1]
    zone = _zone(tz)
    local = since.astimezone(zone)
    start: datetime | None = _trigger(cron, tz).get_next_fire_time(None, local)
    if start is not None and start - local <= _MEMO_SPAN and _same_offset(local, start, zone):
        if len(_NEXT) > 4096:
            _NEXT.clear()
        _NEXT[key] = (since, start)
    return start


# (cron, tz, duration) -> (from, until, active): the answer holds for every now in
# [from, until) (until None: for ever after `from`)
_ACTIVE: dict[tuple[str, str, int], tuple[datetime, datetime | None, bool]] = {}


def _window(schedule: Schedule, now: datetime) -> tuple[datetime, datetime | None, bool]:
    """Whether `schedule` is active at `now`, and the span [from, until) around `now` with the
    same answer (until None: for ever).

    With `start` the first start after now - duration: when start <= now the schedule stays
    active until start + duration; otherwise it stays inactive until `start` (no start lies
    between now - duration and `start`, so none in any later (now' - duration, now'] before
    it). Memoized on that span, only when the zone keeps one UTC offset from now - duration to
    the span's end (under a week): across a change the answer depends on where the search
    starts (a start in a spring-forward gap fires an hour late only when the search began
    before the gap), so there every call asks the trigger.
    """
    key = (schedule.cron, schedule.time_zone, schedule.duration_seconds)
    hit = _ACTIVE.get(key)
    if hit is not None and hit[0] <= now and (hit[1] is None or now < hit[1]):
        return hit
    # the trigger returns the first fire time >= `since` (rounded up to the second)
    duration = timedelta(seconds=schedule.duration_seconds)
    since = now - duration + timedelta(microseconds=1)
    start = first_start_at_or_after(schedule.cron, schedule.time_zone, since)
    if start is None:
        # no start at or after `since`, so none after any later now - duration either:
        # inactive for ever (searching again costs a scan to the year 9999 every tick)
        return _remember(key, (now, None, False))
    active = start <= now
    end = start + duration if active else start
    if end - since <= _MEMO_SPAN:
        zone = _zone(schedule.time_zone)
        if _same_offset(since.astimezone(zone), end.astimezone(zone), zone):
            return _remember(key, (now, end, active))
    # not memoized: valid at `now` only
    return (now, now + timedelta(microseconds=1), active)


def _remember(
    key: tuple[str, str, int], window: tuple[datetime, datetime | None, bool]
) -> tuple[datetime, datetime | None, bool]:
    if len(_ACTIVE) > 4096:
        _ACTIVE.clear()
    _ACTIVE[key] = window
    return window


def is_active(schedule: Schedule, now: datetime) -> bool:
    """True when a start of `schedule` lies in (now - duration, now]: active for
    [start, start + duration)."""
    return _window(schedule, now)[2]


# id(schedules) -> (schedules, min, max, from, until, bounds): the answer for [from, until)
_BOUNDS: dict[int, tuple[Sequence[Schedule], int, int, datetime, datetime | None, Bounds]] = {}


def bounds(
    min_replicas: int, max_replicas: int, schedules: Sequence[Schedule], now: datetime
) -> Bounds:
    """min/max after active schedules: each active schedule replaces the bound it sets; when
    several are active the highest min and the highest max win. min never exceeds max."""
    hit = _BOUNDS.get(id(schedules))
    if (
        hit is not None
        and hit[0] is schedules
        and hit[1] == min_replicas
        and hit[2] == max_replicas
        and hit[3] <= now
        and (hit[4] is None or now < hit[4])
    ):
        return hit[5]  # no schedule starts or ends between: the same answer
    active: list[Schedule] = []
    until: datetime | None = None
    for s in schedules:
        _, ends, on = _window(s, now)
        if ends is not None and (until is None or ends < until):
            until = ends
        if on:
            active.append(s)
    if not active:
        result = Bounds(min_replicas, max_replicas)
    else:
        mins = [s.min_replicas for s in active if s.min_replicas is not None]
        maxs = [s.max_replicas for s in active if s.max_replicas is not None]
        lo = max(mins) if mins else min_replicas
        hi = max(maxs) if maxs else max_replicas
        if lo > hi:
            hi = lo
        result = Bounds(lo, hi, tuple(s.name for s in active))
    if len(_BOUNDS) > 4096:
        _BOUNDS.clear()
    _BOUNDS[id(schedules)] = (schedules, min_replicas, max_replicas, now, until, result)
    return result
