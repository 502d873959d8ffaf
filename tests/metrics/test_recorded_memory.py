"""Recorded (trace file) and in-memory sources."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemini.metrics import MetricRequest
from gemini.metrics.memory import MemorySource
from gemini.metrics.recorded import RecordedSource
from gemini.policy.replicas import reduce
from gemini.policy.spec import WindowFunction
from gemini.series import Sample, write_trace
from tests.conftest import trace_path
from tests.metrics.conftest import NOW, request

T0 = NOW - timedelta(hours=1)


def trace_file(tmp_path: Path, values: list[float], step: int = 60) -> Path:
    path = tmp_path / "t.csv"
    write_trace(path, [Sample(T0 + timedelta(seconds=step * i), v) for i, v in enumerate(values)])
    return path


def rec(file: Path | str, **kw: object) -> dict[str, object]:
    return {"recorded": {"file": str(file), **kw}}


@pytest.mark.parametrize(
    ("offset", "loop", "latest_value", "latest_offset", "kind"),
    [
        pytest.param(-1, False, None, None, "empty", id="before-start"),
        pytest.param(0, False, 1.0, 0, None, id="at-start"),
        pytest.param(150, False, 3.0, 120, None, id="between-samples"),
        pytest.param(10_000, False, 4.0, 180, None, id="after-end-keeps-old-timestamp"),
        pytest.param(240 + 70, True, 2.0, 240 + 60, None, id="loop-second-round"),
        pytest.param(3 * 240 + 200, True, 4.0, 3 * 240 + 180, None, id="loop-fourth-round"),
    ],
)
def test_recorded_replay(
    tmp_path: Path,
    offset: int,
    loop: bool,
    latest_value: float | None,
    latest_offset: int | None,
    kind: str | None,
) -> None:
    path = trace_file(tmp_path, [1, 2, 3, 4])  # period of one loop: 180 + 60 = 240 s
    now = T0 + timedelta(seconds=offset)
    [obs] = RecordedSource().fetch([request("m", rec(path, loop=loop, scale=10))], now)
    if kind is not None:
        assert obs.error_kind == kind
        return
    assert obs.latest is not None and latest_value is not None and latest_offset is not None
    assert obs.latest.value == latest_value * 10
    assert obs.latest.at == T0 + timedelta(seconds=latest_offset)
    assert all(s.at <= now for s in obs.samples)


def test_recorded_caches_per_file_and_reloads_on_change(tmp_path: Path) -> None:
    path = trace_file(tmp_path, [1, 2])
    src = RecordedSource()
    reqs = [request("a", rec(path), "ns/a"), request("b", rec(path, scale=2), "ns/b")]
    for _ in range(3):
        out = src.fetch(reqs, NOW)
    assert [o.latest.value for o in out if o.latest] == [2.0, 4.0]
    assert src.loads == 1
    write_trace(path, [Sample(T0, 5.0), Sample(T0 + timedelta(seconds=1), 6.0)])
    import os

    os.utime(path, (1, 1))  # a different mtime even within the same second
    [a, _] = src.fetch(reqs, NOW)
    assert a.latest is not None and a.latest.value == 6.0
    assert src.loads == 2


def test_recorded_errors_are_values(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2026-01-01T00:00:00Z,abc\n")
    (tmp_path / "dir.csv").mkdir()
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    good = trace_file(tmp_path, [1, 2])
    out = RecordedSource().fetch(
        [
            request("a", rec(tmp_path / "nope.csv")),
            request("b", rec(bad)),
            request("c", rec(tmp_path / "dir.csv")),
            request("d", rec(tmp_path / "junk.parquet")),
            request("e", rec(good)),
        ],
        NOW,
    )
    # an unreadable file fails its own metric only, never the other recorded reads
    assert [o.error_kind for o in out] == ["not_found", "invalid", "invalid", "invalid", None]
    assert "row 2" in (out[1].error or "")
    assert "Is a directory" in (out[2].error or "")
    assert "Parquet" in (out[3].error or "")


def test_recorded_relative_paths_and_real_trace() -> None:
    real = trace_path("nab-aws-elb-request-count-5min.csv")
    src = RecordedSource(base_dir=real.parent)
    trace = src.trace(real.name)
    from datetime import UTC, datetime

    mid = datetime.fromtimestamp(trace.times[len(trace) // 2], UTC)
    [obs] = src.fetch([request("rps", rec(real.name))], mid)
    assert obs.latest is not None and obs.latest.at == mid
    assert obs.latest.value == trace.values[len(trace) // 2]


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30),
    step=st.integers(1, 600),
    offset=st.integers(-5000, 100_000),
    loop=st.booleans(),
)
def test_recorded_never_returns_future_samples(
    values: list[float], step: int, offset: int, loop: bool
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = trace_file(Path(d), values, step)
        now = T0 + timedelta(seconds=offset)
        [obs] = RecordedSource().fetch([request("m", rec(path, loop=loop))], now)
    assert all(s.at <= now for s in obs.samples)
    times = [s.at for s in obs.samples]
    assert times == sorted(set(times))
    assert obs.ok or obs.error_kind == "empty"


def test_memory_source() -> None:
    mem = MemorySource()
    mem.set("load", 1.0, NOW - timedelta(seconds=30))
    mem.set("load", 2.0, NOW - timedelta(seconds=10))
    mem.set("load", 9.0, NOW + timedelta(seconds=10))  # the future stays hidden
    mem.set("load", 5.0, NOW, policy="ns/special")
    mem.fail("broken", "unavailable", "backend down")
    reqs = [
        request("load", {"recorded": {"file": "x"}}, "ns/a"),
        request("load", {"recorded": {"file": "x"}}, "ns/special"),
        request("broken", {"recorded": {"file": "x"}}),
        request("unknown", {"recorded": {"file": "x"}}),
    ]
    a, special, broken, unknown = mem.fetch(reqs, NOW)
    assert [s.value for s in a.samples] == [1.0, 2.0]
    assert special.latest is not None and special.latest.value == 5.0
    assert (broken.error_kind, broken.error) == ("unavailable", "backend down")
    assert unknown.error_kind == "empty"
    mem.set("broken", 3.0, NOW)  # a new value clears the failure
    [fixed] = mem.fetch([reqs[2]], NOW)
    assert fixed.latest is not None and fixed.latest.value == 3.0


def windowed(name: str, window: int, function: str = "Max") -> MetricRequest:
    """A request for a metric reduced over `window` seconds (MemorySource answers by name; the
    source kind in the spec only has to be a valid one)."""
    base = request(name, {"recorded": {"file": "x"}})
    metric = base.metric.model_copy(
        update={"window_seconds": window, "window_function": WindowFunction(function)}
    )
    return MetricRequest(base.policy, base.namespace, metric)


@settings(max_examples=150, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 4000), min_size=1, max_size=60),
    values=st.lists(st.floats(-1e6, 1e6), min_size=60, max_size=60),
    window=st.sampled_from([0, 60, 300, 900, 3600]),
    function=st.sampled_from(["Max", "Min", "Mean", "Last"]),
    read_after=st.integers(-3000, 100_000),
)
def test_memory_read_reduces_as_the_whole_history_does(
    gaps: list[int], values: list[float], window: int, function: str, read_after: int
) -> None:
    """A read returns only the recent samples (the window, at least 600 s, and the newest one
    whatever its age), and the engine's reduction of it is the one of the whole history: the
    value, and the newest sample's time (so an old value is stale, never missing)."""
    mem = MemorySource()
    at = T0
    history = []
    for gap, value in zip(gaps, values, strict=False):
        at += timedelta(seconds=gap)
        mem.set("m", value, at)
        history.append(Sample(at, value))
    now = history[0].at + timedelta(seconds=read_after)
    req = windowed("m", window, function)
    [obs] = mem.fetch([req], now)
    whole = reduce(history, window, WindowFunction(function), now)
    if whole is None:
        assert obs.error_kind == "empty"
        return
    assert reduce(obs.samples, window, WindowFunction(function), now) == whole
    assert all(s.at <= now for s in obs.samples)
    assert len(obs.samples) <= 1 + sum(
        1 for s in history if now - timedelta(seconds=max(window, 600)) < s.at <= now
    )


def test_memory_keeps_eight_days_for_a_forecast_a_week_back() -> None:
    """Samples older than the retention (8 days before the newest) are dropped; a read a week
    back (a forecast metric's `now - offsetSeconds`) still finds its window."""
    mem = MemorySource()
    start = NOW - timedelta(days=9)
    for minute in range(9 * 24 * 60 + 1):
        mem.set("load", float(minute), start + timedelta(minutes=minute))
    req = windowed("load", 3600)
    [week_ago] = mem.fetch([req], NOW - timedelta(days=7))
    assert week_ago.latest is not None and week_ago.latest.value == 2 * 24 * 60
    assert len(week_ago.samples) == 60
    [too_old] = mem.fetch([req], NOW - timedelta(days=8, minutes=1))
    assert too_old.error_kind == "empty"
    small = MemorySource(retention_seconds=600)
    for minute in range(30):
        small.set("load", float(minute), NOW - timedelta(minutes=29 - minute))
    [kept] = small.fetch([req], NOW)
    assert [s.value for s in kept.samples] == [float(m) for m in range(19, 30)]
    with pytest.raises(ValueError, match="retention_seconds"):
        MemorySource(retention_seconds=0)
