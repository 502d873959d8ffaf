"""Time sources. `SystemClock.now()` is the only wall-clock read in gemini.

Imports no I/O library; everything else receives `now` as an argument or a `Clock`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (simulator, demo, tests)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError("time does not go backwards")
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            if when < self._now:
                raise ValueError("time does not go backwards")
            # (the simulator sets a UTC time on every step: no conversion then)
            self._now = when if when.tzinfo is UTC else when.astimezone(UTC)


def utc(dt: datetime) -> datetime:
    """Return `dt` as aware UTC; naive datetimes are taken to be UTC."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (a trailing Z allowed) into aware UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    return utc(datetime.fromisoformat(value))


def iso(dt: datetime) -> str:
    """Format aware UTC as ISO-8601 with a Z suffix."""
    text = utc(dt).isoformat()
    return text.replace("+00:00", "Z")


class ScaledClock:
    """Time that runs `speed` times faster than `base`, starting at `start` (the demo).

    Reads the wall clock only through `base` (a `SystemClock` by default)."""

    def __init__(self, start: datetime, speed: float, base: Clock | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self._base: Clock = base or SystemClock()
        self._wall0 = self._base.now()
        self._start = utc(start)
        self.speed = float(speed)

    def now(self) -> datetime:
        return self._start + (self._base.now() - self._wall0) * self.speed


def span(seconds: float) -> str:
    """A duration as people say it: `45 s`, `20 min`, `23 h`, `23 h 30 min`, `7 d`; to the
    second (`1 h 0 min 30 s`), whole days only when it is whole days."""
    s = round(seconds)
    if s and s % 86400 == 0:
        return f"{s // 86400} d"
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    parts = [f"{h} h"] if h else []
    if m or (h and sec):
        parts.append(f"{m} min")
    if sec or not parts:
        parts.append(f"{sec} s")
    return " ".join(parts)
