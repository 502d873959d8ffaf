"""Sample timestamps from the Pub/Sub source reach the engine: `maxAgeSeconds` judges freshness
on what Cloud Monitoring actually returned (the real client against the local MetricService)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from google.api import metric_pb2

from gemini.metrics.cloud_monitoring import MonitoringReader
from gemini.metrics.pubsub import PubsubSource
from gemini.policy import engine
from gemini.policy.decision import Capacity, MetricStatus
from gemini.policy.spec import parse_policy
from gemini.policy.state import PolicyState
from tests.fakes.monitoring import FakeMetricService, MonitoringServer
from tests.metrics.conftest import NOW, request

BACKLOG = "pubsub.googleapis.com/subscription/num_undelivered_messages"


@pytest.mark.parametrize(
    ("age", "status", "desired"),
    [
        pytest.param(90, MetricStatus.OK, 8, id="visible-late-but-fresh"),
        pytest.param(200, MetricStatus.STALE, 4, id="older-than-maxAge-holds"),
    ],
)
def test_backlog_freshness_reaches_the_engine(
    monitoring: FakeMetricService,
    monitoring_server: MonitoringServer,
    age: int,
    status: MetricStatus,
    desired: int,
) -> None:
    monitoring.add_series(
        "acme",
        BACKLOG,
        "pubsub_subscription",
        {"subscription_id": "orders"},
        [(NOW - timedelta(seconds=age), 750)],
        value_type=metric_pb2.MetricDescriptor.INT64,
    )
    policy = parse_policy(
        {
            "metadata": {"name": "worker"},
            "spec": {
                "target": {"kubernetes": {"name": "worker"}},
                "minReplicas": 1,
                "maxReplicas": 20,
                "metrics": [
                    {
                        "name": "backlog",
                        "source": {
                            "pubsub": {"subscription": "projects/acme/subscriptions/orders"}
                        },
                        "target": {"type": "AverageValue", "averageValue": 100},
                        "maxAgeSeconds": 180,
                    }
                ],
            },
        }
    )
    metric = policy.spec.metrics[0]
    reader = MonitoringReader(endpoint=monitoring_server.endpoint)
    observations = PubsubSource(reader=reader).fetch(
        [request("backlog", {"pubsub": metric.source.pubsub.model_dump(by_alias=True)})], NOW
    )
    decision, _ = engine.decide(
        policy.spec, PolicyState(), observations, Capacity(current=4), NOW, policy=policy.key
    )
    [result] = decision.metrics
    assert result.status is status
    assert result.sample_at == NOW - timedelta(seconds=age)
    assert decision.desired == desired
