"""The demo's own load series: generated, deterministic, documented.

Shape (per simulated day): a base of `base` messages/s, a daily cycle peaking at 14:00 UTC at
`base x peak_factor`, a quieter night (x 0.25 at 02:00), a weekday/weekend difference (weekends
at 60 %), and bursts: every `burst_every` hours a 10-minute batch job adds `burst_factor x base`.
Noise is seeded, so every run of the demo replays the same series. No third-party trace is
shipped with the package (recorded traces live outside the repository).
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from gemini.series import Sample

DEMO_START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)  # a Monday morning


def demand(
    t: datetime,
    *,
    base: float = 400.0,
    peak_factor: float = 3.0,
    burst_every: float = 5.0,
    burst_factor: float = 4.0,
    seed: int = 7,
) -> float:
    """Messages per second arriving at time `t` (deterministic for a given seed)."""
    hours = (t - DEMO_START).total_seconds() / 3600.0
    hour_of_day = (t.hour + t.minute / 60.0) % 24
    # daily cycle: cosine with its maximum at 14:00 and minimum at 02:00
    daily = 0.25 + (peak_factor - 0.25) * (
        0.5 + 0.5 * math.cos((hour_of_day - 14.0) / 24.0 * 2 * math.pi)
    )
    weekly = 0.6 if t.weekday() >= 5 else 1.0
    level = base * daily * weekly
    phase = hours % burst_every
    if 1.0 <= phase < 1.0 + 10.0 / 60.0:
        level += burst_factor * base
    minute = int((t - DEMO_START).total_seconds() // 60)
    noise = random.Random(seed * 1_000_003 + minute).gauss(1.0, 0.05)
    return max(0.0, level * noise)


def series(
    start: datetime = DEMO_START, hours: float = 48.0, step_seconds: int = 60
) -> list[Sample]:
    """The demand series sampled every `step_seconds` over `hours`."""
    n = int(hours * 3600 // step_seconds)
    return [
        Sample(
            start + timedelta(seconds=i * step_seconds),
            demand(start + timedelta(seconds=i * step_seconds)),
        )
        for i in range(n)
    ]
