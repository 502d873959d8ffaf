"""Fixtures for the metric-source tests: the local MetricService and request builders."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from gemini.metrics import MetricRequest
from gemini.policy.spec import Metric
from tests.fakes.monitoring import FakeMetricService, MonitoringServer

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def monitoring_server() -> Iterator[MonitoringServer]:
    with MonitoringServer() as server:
        yield server


@pytest.fixture
def monitoring(monitoring_server: MonitoringServer) -> Iterator[FakeMetricService]:
    """The server's state, empty and idle at the start of each test."""
    assert monitoring_server.service.wait_idle(), "a call from an earlier test is still served"
    monitoring_server.service.clear()
    monitoring_server.service.page_size_cap = None
    yield monitoring_server.service
    monitoring_server.service.clear()


def metric(name: str, source: dict[str, Any], **extra: Any) -> Metric:
    return Metric.model_validate(
        {"name": name, "source": source, "target": {"type": "Value", "value": 1}, **extra}
    )


def request(name: str, source: dict[str, Any], policy: str = "default/p") -> MetricRequest:
    ns = policy.split("/")[0]
    return MetricRequest(policy, ns, metric(name, source))


def pubsub(project: str, sub: str, which: str = "num_undelivered_messages") -> dict[str, Any]:
    return {"pubsub": {"subscription": f"projects/{project}/subscriptions/{sub}", "metric": which}}


def bigtable(project: str, instance: str, cluster: str, which: str = "cpu_load") -> dict[str, Any]:
    return {
        "bigtable": {"project": project, "instance": instance, "cluster": cluster, "metric": which}
    }


@pytest.fixture(scope="session")
def prometheus() -> Iterator[tuple[str, Any]]:
    """(URL of a real Prometheus, the exporter it scrapes every second)."""
    from tests.conftest import need_binary
    from tests.fakes.prometheus_server import Exporter, PrometheusProcess

    binary = need_binary("prometheus", "/usr/bin/prometheus")
    exporter = Exporter()
    exporter.backlog.set(1234)
    exporter.per_zone.labels(zone="a").set(1)
    exporter.per_zone.labels(zone="b").set(2)
    prom = PrometheusProcess(binary, exporter.port)
    try:
        prom.wait_ready('gemini_test_zone_load{zone="b"}')
        yield prom.url, exporter
    finally:
        prom.stop()
        exporter.stop()
