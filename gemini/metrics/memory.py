"""An in-memory metric source: values set from code (tests, programs that embed the loop).

Keys are a metric name, or "namespace/policy:metric" for one policy's metric; a request is
answered from its policy-specific key first, then from the bare metric name. Keeps a bounded
history per key (8 days by default: a forecast metric reads up to 7 days back, plus its window)
and never returns samples after `now`. Must not import `gemini.scalers`.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

from gemini.clock import utc
from gemini.metrics import MetricRequest
from gemini.series import Observation, Sample


class MemorySource:
    """`set(name, value, at)` / `fail(name, kind, message)`; `fetch` reads them back.

    Each key keeps the samples of the last `retention_seconds` before its newest one, and at
    most `history` samples (the default 100,000 hold 8 days of a sample every 7 s; a denser
    series keeps less). A read returns the samples of the last `max(windowSeconds, 600)`
    seconds before `now`, and the newest sample at or before `now` even when it is older (so an
    old value is judged stale by the engine, not missing)."""

    def __init__(self, retention_seconds: float = 8 * 86400, history: int = 100_000) -> None:
        if retention_seconds <= 0:
            raise ValueError(f"retention_seconds must be > 0, got {retention_seconds}")
        self._retention = timedelta(seconds=retention_seconds)
        self._history = max(1, history)
        self._samples: dict[str, list[Sample]] = {}
        self._errors: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(metric: str, policy: str | None = None) -> str:
        return f"{policy}:{metric}" if policy else metric

    def set(self, metric: str, value: float, at: datetime, *, policy: str | None = None) -> None:
        """Record a sample (any order; a later `at` for the same instant replaces the value)."""
        k = self.key(metric, policy)
        sample = Sample(utc(at), float(value))
        with self._lock:
            self._errors.pop(k, None)
            series = self._samples.setdefault(k, [])
            i = bisect.bisect_left(series, sample.at, key=_at)
            if i < len(series) and series[i].at == sample.at:
                series[i] = sample
            else:
                series.insert(i, sample)
            oldest = bisect.bisect_left(series, series[-1].at - self._retention, key=_at)
            del series[: max(oldest, len(series) - self._history)]

    def fail(self, metric: str, kind: str, message: str, *, policy: str | None = None) -> None:
        """Make reads of this key fail until the next `set`."""
        with self._lock:
            self._errors[self.key(metric, policy)] = (kind, message)

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()
            self._errors.clear()

    def fetch(self, requests: Sequence[MetricRequest], now: datetime) -> list[Observation]:
        now = utc(now)
        out: list[Observation] = []
        with self._lock:
            for req in requests:
                name = req.metric.name
                keys = [self.key(name, req.policy), name]
                hit = next((k for k in keys if k in self._errors or k in self._samples), None)
                if hit is None:
                    out.append(Observation.failed(name, "empty", f"no value set for {keys[0]}"))
                    continue
                if hit in self._errors:
                    kind, message = self._errors[hit]
                    out.append(Observation.failed(name, kind, message))
                    continue
                series = self._samples[hit]
                i = bisect.bisect_right(series, now, key=_at)
                back = timedelta(seconds=req.lookback_seconds)
                first = min(bisect.bisect_right(series, now - back, key=_at), i - 1)
                visible = tuple(series[max(first, 0) : i])
                if not visible:
                    out.append(Observation.failed(name, "empty", f"no value at or before {now}"))
                elif not all(math.isfinite(s.value) for s in visible):
                    out.append(Observation.failed(name, "invalid", f"{hit}: value is not finite"))
                else:
                    out.append(Observation(metric=name, samples=visible))
        return out

    def close(self) -> None:
        return None


def _at(sample: Sample) -> datetime:
    return sample.at
