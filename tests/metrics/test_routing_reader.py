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
