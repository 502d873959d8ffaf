"""`RoutingReader`: a broken source (raising, or answering the wrong number of results) fails
only its own requests; `close()` closes every source even when one fails to close."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from gemini.metrics import MetricRequest, RoutingReader
from gemini.policy.spec import Metric
from gemini.series import Observation

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def metric(name: str, kind: str) -> Metric:
    source = (
        {"recorded": {"file": "x.csv"}}
        if kind == "recorded"
        else {"prometheus": {"serverAddress": "http://p:9090", "query": "up"}}
    )
    return Metric.model_validate(
        {"name": name, "source": source, "target": {"type": "Value", "value": 1}}
    )


class Good:
    closed = False

    def fetch(self, requests: Sequence[MetricRequest], now: datetime) -> list[Observation]:
        return [Observation.of(r.metric.name, now, 1.0) for r in requests]

    def close(self) -> None:
        self.closed = True


class Short(Good):
    def fetch(self, requests: Sequence[MetricRequest], now: datetime) -> list[Observation]:
        return []

    def close(self) -> None:
        raise RuntimeError("cannot close")


def test_a_source_answering_too_few_results_fails_only_its_requests() -> None:
    good = Good()
    reader = RoutingReader({"recorded": good, "prometheus": Short()})
    reqs = [
        MetricRequest("ns/p", "ns", metric("a", "recorded")),
        MetricRequest("ns/p", "ns", metric("b", "prometheus")),
    ]
    a, b = reader.read(reqs, NOW)
    assert a.ok and a.metric == "a"
    assert not b.ok and b.metric == "b" and "0 results for 1 requests" in (b.error or "")
    with pytest.raises(RuntimeError, match="cannot close"):
        reader.close()
    assert good.closed


def test_a_metric_with_an_offset_reads_the_past_and_sees_it_as_now() -> None:
    """`offsetSeconds`: the source is read as of `now - offset`, and its samples come back
    moved forward by the offset (the engine judges their age as any other metric's). Metrics
    without an offset in the same read see the present."""
    from datetime import timedelta

    from gemini.metrics.memory import MemorySource

    day = timedelta(days=1)
    source = MemorySource()
    source.set("load", 5.0, NOW - day + timedelta(hours=1))  # yesterday, an hour later
    source.set("load", 1.0, NOW - timedelta(minutes=1))  # just now
    reader = RoutingReader({"prometheus": source})

    def load(offset: int) -> MetricRequest:
        doc = {
            "name": "load",
            "source": {"prometheus": {"serverAddress": "http://p:9090", "query": "up"}},
            "target": {"type": "AverageValue", "averageValue": 1},
            "offsetSeconds": offset,
        }
        return MetricRequest("ns/p", "ns", Metric.model_validate(doc))

    ahead, current, too_far = reader.read([load(82800), load(0), load(86400 + 7200)], NOW)
    # 23 h ago, yesterday's sample an hour ahead of now is the newest; it reads as 0 s old
    assert [(s.at, s.value) for s in ahead.samples] == [(NOW, 5.0)]
    assert current.samples[-1].value == 1.0
    assert current.samples[-1].at == NOW - timedelta(minutes=1)
    assert not too_far.ok and too_far.error_kind == "empty"
