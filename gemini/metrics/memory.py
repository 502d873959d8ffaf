"""An in-memory metric source: values set from code (the demo's simulated backends, tests).

Keys are a metric name, or "namespace/policy:metric" for one policy's metric; a request is
answered from its policy-specific key first, then from the bare metric name. Keeps a bounded
history per key and never returns samples after `now`. Must not import `gemini.scalers`.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Sequence
from datetime import datetime

from gemini.clock import utc
from gemini.metrics import MetricRequest
from gemini.series import Observation, Sample


class MemorySource:
    """`set(name, value, at)` / `fail(name, kind, message)`; `fetch` reads them back."""

    def __init__(self, history: int = 1000) -> None:
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
            times = [s.at for s in series]
            i = bisect.bisect_left(times, sample.at)
            if i < len(series) and series[i].at == sample.at:
                series[i] = sample
            else:
                series.insert(i, sample)
            del series[: max(0, len(series) - self._history)]

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
                i = bisect.bisect_right([s.at for s in series], now)
                visible = tuple(series[:i])
                if not visible:
                    out.append(Observation.failed(name, "empty", f"no value at or before {now}"))
                elif not all(math.isfinite(s.value) for s in visible):
                    out.append(Observation.failed(name, "invalid", f"{hit}: value is not finite"))
                else:
                    out.append(Observation(metric=name, samples=visible))
        return out

    def close(self) -> None:
        return None
