"""Cron schedules that change a policy's min/max while active.

Cron arithmetic uses APScheduler's `CronTrigger` (time zones and DST handled there). Pure: `now`
is always an argument. Imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

if TYPE_CHECKING:
    from gemini.policy.spec import Schedule


@lru_cache(maxsize=1024)
def _trigger(cron: str, tz: str) -> CronTrigger:
    return CronTrigger.from_crontab(cron, timezone=ZoneInfo(tz))


def check_cron(cron: str) -> None:
    """Raise ValueError with a readable message when `cron` is not a five-field expression."""
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron must have 5 fields (minute hour day month day-of-week), got {len(fields)}: {cron!r}"
        )
    try:
        _trigger(cron, "UTC")
    except (ValueError, KeyError) as exc:
        raise ValueError(f"bad cron expression {cron!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Bounds:
    """Effective min/max at one instant, and the schedules that set them."""

    min_replicas: int
    max_replicas: int
    active: tuple[str, ...] = ()


def is_active(schedule: Schedule, now: datetime) -> bool:
    """True when a start of `schedule` lies in (now - duration, now]: active for
    [start, start + duration)."""
    trigger = _trigger(schedule.cron, schedule.time_zone)
    # the trigger returns the first fire time >= `since` (rounded up to the second)
    since = now - timedelta(seconds=schedule.duration_seconds) + timedelta(microseconds=1)
    start = trigger.get_next_fire_time(None, since.astimezone(ZoneInfo(schedule.time_zone)))
    return start is not None and start <= now


def bounds(
    min_replicas: int, max_replicas: int, schedules: Sequence[Schedule], now: datetime
) -> Bounds:
    """min/max after active schedules: each active schedule replaces the bound it sets; when
    several are active the highest min and the highest max win. min never exceeds max."""
    active = [s for s in schedules if is_active(s, now)]
    if not active:
        return Bounds(min_replicas, max_replicas)
    mins = [s.min_replicas for s in active if s.min_replicas is not None]
    maxs = [s.max_replicas for s in active if s.max_replicas is not None]
    lo = max(mins) if mins else min_replicas
    hi = max(maxs) if maxs else max_replicas
    if lo > hi:
        hi = lo
    return Bounds(lo, hi, tuple(s.name for s in active))
