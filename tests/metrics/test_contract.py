"""The contract every MetricSource keeps, checked for each implementation: one Observation per
request, in order, names preserved; nothing after `now`; samples oldest first; failures are
values with a known kind, never exceptions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gemini.metrics import MetricRequest, MetricSource
from gemini.metrics.bigtable import BigtableSource
from gemini.metrics.cloud_monitoring import CloudMonitoringSource, MonitoringReader
from gemini.metrics.memory import MemorySource
from gemini.metrics.prometheus import PrometheusSource
from gemini.metrics.pubsub import PubsubSource
from gemini.metrics.recorded import RecordedSource
from gemini.series import Sample, write_trace
from tests.metrics.conftest import bigtable, pubsub, request

KINDS = {"unavailable", "deadline", "quota", "permission", "empty", "invalid", "not_found", "error"}
BACKLOG = "pubsub.googleapis.com/subscription/num_undelivered_messages"
CPU = "bigtable.googleapis.com/cluster/cpu_load"

Setup = Callable[[pytest.FixtureRequest, Path, datetime], tuple[MetricSource, list[MetricRequest]]]


def _reader(fx: pytest.FixtureRequest) -> MonitoringReader:
    server = fx.getfixturevalue("monitoring_server")
    fx.getfixturevalue("monitoring")  # clean state
    return MonitoringReader(endpoint=server.endpoint, backoff_seconds=0.001)


def memory(
    fx: pytest.FixtureRequest, tmp: Path, now: datetime
) -> tuple[MetricSource, list[MetricRequest]]:
    mem = MemorySource()
    mem.set("a", 1.0, now - timedelta(seconds=5))
    mem.set("a", 2.0, now + timedelta(seconds=5))
    mem.fail("c", "quota", "no")
    src = {"recorded": {"file": "x"}}
    return mem, [request("a", src), request("b", src), request("c", src), request("a", src, "x/y")]


def recorded(
    fx: pytest.FixtureRequest, tmp: Path, now: datetime
) -> tuple[MetricSource, list[MetricRequest]]:
    path = tmp / "t.csv"
    write_trace(path, [Sample(now + timedelta(seconds=s), 1.0) for s in (-120, -60, 0, 60)])
    return RecordedSource(), [
        request("a", {"recorded": {"file": str(path)}}),
        request("b", {"recorded": {"file": str(tmp / "missing.csv")}}),
        request("c", {"recorded": {"file": str(path), "loop": True}}),
    ]


def _seed(fx: pytest.FixtureRequest, now: datetime) -> Any:
    svc = fx.getfixturevalue("monitoring")
    svc.add_series(
        "p",
        BACKLOG,
        "pubsub_subscription",
        {"subscription_id": "good"},
        [(now - timedelta(seconds=s), 1.0) for s in (-60, 60, 120)],
    )
    svc.add_series(
        "p",
        CPU,
        "bigtable_cluster",
        {"instance": "i", "cluster": "c"},
        [(now - timedelta(seconds=s), 0.5) for s in (-60, 60, 120)],
    )
    return svc


def pubsub_src(
    fx: pytest.FixtureRequest, tmp: Path, now: datetime
) -> tuple[MetricSource, list[MetricRequest]]:
    reader = _reader(fx)
    _seed(fx, now)
    return PubsubSource(reader=reader), [
        request("a", pubsub("p", "good")),
        request("b", pubsub("p", "missing")),
        request("c", pubsub("p", "good"), "x/y"),
        request("d", bigtable("p", "i", "c")),
    ]


def bigtable_src(
    fx: pytest.FixtureRequest, tmp: Path, now: datetime
) -> tuple[MetricSource, list[MetricRequest]]:
    reader = _reader(fx)
    _seed(fx, now)
    return BigtableSource(reader=reader), [
        request("a", bigtable("p", "i", "c")),
        request("b", bigtable("p", "i", "nope")),
        request("c", bigtable("q", "i", "c", "cpu_load_hottest_node")),
    ]


def cloud_monitoring(
    fx: pytest.FixtureRequest, tmp: Path, now: datetime
) -> tuple[MetricSource, list[MetricRequest]]:
    reader = _reader(fx)
    svc = _seed(fx, now)
    import grpc

    svc.fail(grpc.StatusCode.PERMISSION_DENIED, match=lambda r: r.name == "projects/denied")
    cm = {"cloudMonitoring": {"project": "p", "filter": f'metric.type = "{BACKLOG}"'}}
    denied = {"cloudMonitoring": {"project": "denied", "filter": f'metric.type = "{BACKLOG}"'}}
    return CloudMonitoringSource(reader=reader), [
        request("a", cm),
        request("b", denied),
        request("c", cm, "x/y"),
    ]


def prometheus_src(
    fx: pytest.FixtureRequest, tmp: Path, now: datetime
) -> tuple[MetricSource, list[MetricRequest]]:
    url, _ = fx.getfixturevalue("prometheus")
    prom = {"prometheus": {"serverAddress": url, "query": "sum(gemini_test_backlog)"}}
    bad = {"prometheus": {"serverAddress": url, "query": "gemini_test_zone_load"}}
    return PrometheusSource(), [request("a", prom), request("b", bad), request("c", prom, "x/y")]


# name -> (servers started before `now` is taken, setup)
SOURCES: dict[str, tuple[tuple[str, ...], Setup]] = {
    "memory": ((), memory),
    "recorded": ((), recorded),
    "pubsub": (("monitoring_server",), pubsub_src),
    "bigtable": (("monitoring_server",), bigtable_src),
    "cloudMonitoring": (("monitoring_server",), cloud_monitoring),
    "prometheus": (("prometheus",), prometheus_src),
}


@pytest.mark.parametrize(("servers", "setup"), list(SOURCES.values()), ids=list(SOURCES))
def test_source_contract(
    servers: tuple[str, ...], setup: Setup, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    for name in servers:
        request.getfixturevalue(name)
    now = datetime.now(UTC).replace(microsecond=0)
    source, reqs = setup(request, tmp_path, now)
    try:
        assert source.fetch([], now) == []
        out = source.fetch(reqs, now)
    finally:
        source.close()
    assert len(out) == len(reqs)
    assert [o.metric for o in out] == [r.metric.name for r in reqs]
    assert out[0].ok, out[0].error  # each setup's first request is readable
    assert not out[1].ok  # ... and its second is not
    for obs in out:
        times = [s.at for s in obs.samples]
        assert all(t <= now for t in times)
        assert times == sorted(times)
        if obs.error is not None:
            assert obs.error_kind in KINDS and obs.error
            assert not obs.samples
        else:
            assert obs.samples
