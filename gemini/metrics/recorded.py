"""`source.recorded`: a metric replayed from a trace file (CONTRACTS.md trace format).

Each file is parsed once and cached (keyed by path and modification time). `scale` multiplies
values; `loop` replays the trace in a loop aligned to its start (for demos), with sample
timestamps mapped into the present. Never returns samples after `now`. Must not import
`gemini.scalers`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gemini.clock import utc
from gemini.errors import SpecError
from gemini.metrics import MetricRequest
from gemini.series import Observation, Sample, Trace, read_trace


class RecordedSource:
    """Reads `source.recorded` metrics. `base_dir` resolves relative trace paths (default: cwd)."""

    def __init__(self, base_dir: str | Path | None = None) -> None:
        self._base = Path(base_dir) if base_dir is not None else None
        self._cache: dict[Path, tuple[float, Trace]] = {}
        self._lock = threading.Lock()
        self.loads = 0  # files parsed (cache misses), for tests

    def trace(self, file: str) -> Trace:
        path = Path(file)
        if not path.is_absolute() and self._base is not None:
            path = self._base / path
        try:
            mtime = path.stat().st_mtime
        except OSError:
            raise SpecError(f"{path}: no such trace file", [("file", str(path))]) from None
        with self._lock:
            hit = self._cache.get(path)
            if hit is not None and hit[0] == mtime:
                return hit[1]
        trace = read_trace(path)
        with self._lock:
            self._cache[path] = (mtime, trace)
            self.loads += 1
        return trace

    def fetch(self, requests: Sequence[MetricRequest], now: datetime) -> list[Observation]:
        return [self._one(req, utc(now)) for req in requests]

    def _one(self, req: MetricRequest, now: datetime) -> Observation:
        name = req.metric.name
        cfg = req.metric.source.recorded
        if cfg is None:
            return Observation.failed(name, "invalid", "not a recorded metric")
        try:
            trace = self.trace(cfg.file)
        except SpecError as exc:
            kind = "not_found" if "no such" in str(exc) else "invalid"
            return Observation.failed(name, kind, str(exc))
        except Exception as exc:  # unreadable: a directory, not Parquet, no timestamp column
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return Observation.failed(name, "invalid", f"{cfg.file}: cannot read: {first}")
        if len(trace) == 0:
            return Observation.failed(name, "empty", f"{cfg.file}: trace has no rows")
        lookback = req.lookback_seconds
        t = now.timestamp()
        offsets = [0.0]
        if cfg.loop and t >= trace.times[0]:
            period = _period(trace)
            shift = ((t - trace.times[0]) // period) * period
            offsets = [shift - period, shift] if shift > 0 else [shift]
        samples = [
            Sample(s.at + timedelta(seconds=off), s.value * cfg.scale)
            for off in offsets
            for s in trace.between(t - lookback - off, t - off)
        ]
        if not samples:  # nothing in the window: the newest sample before it, however old
            off = offsets[-1]
            i = trace.index_at_or_before(t - off)
            if i < 0:
                return Observation.failed(
                    name, "empty", f"{cfg.file}: no sample at or before {now}"
                )
            at = datetime.fromtimestamp(trace.times[i] + off, UTC)
            samples = [Sample(at, trace.values[i] * cfg.scale)]
        return Observation(metric=name, samples=tuple(s for s in samples if s.at <= now))

    def close(self) -> None:
        with self._lock:
            self._cache.clear()


def _period(trace: Trace) -> float:
    """Length of one loop: the span plus one typical step, so the last and first rows don't meet."""
    if len(trace) < 2:
        return 60.0
    steps = sorted(b - a for a, b in zip(trace.times, trace.times[1:], strict=False))
    return trace.times[-1] - trace.times[0] + steps[len(steps) // 2]
