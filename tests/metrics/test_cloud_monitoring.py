"""Cloud Monitoring, Pub/Sub and Bigtable sources: the real google-cloud-monitoring client against
the in-process MetricService (tests/fakes/monitoring.py): filters, batching, paging, partial
points, staleness and every failure class, asserted on the server's request log."""

from __future__ import annotations

import math
from datetime import timedelta

import grpc
import pytest
from google.api import metric_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gemini.metrics import MetricRequest
from gemini.metrics import bigtable as bt
from gemini.metrics.cloud_monitoring import (
    CloudMonitoringSource,
    MonitoringReader,
    SeriesQuery,
)
from gemini.metrics.pubsub import PubsubSource
from tests.fakes.monitoring import FakeMetricService, MonitoringServer, parse_filter
from tests.metrics.conftest import NOW, bigtable, metric, pubsub, request

BACKLOG = "pubsub.googleapis.com/subscription/num_undelivered_messages"
AGE = "pubsub.googleapis.com/subscription/oldest_unacked_message_age"
CPU = "bigtable.googleapis.com/cluster/cpu_load"


def reader(server: MonitoringServer, **kw: object) -> MonitoringReader:
    kw.setdefault("backoff_seconds", 0.001)
    return MonitoringReader(endpoint=server.endpoint, **kw)  # type: ignore[arg-type]


def seed_sub(
    svc: FakeMetricService,
    project: str,
    sub: str,
    *values: float,
    mtype: str = BACKLOG,
    step: int = 60,
    last_age: int = 30,
) -> None:
    n = len(values)
    points = [
        (NOW - timedelta(seconds=last_age + step * (n - 1 - i)), v) for i, v in enumerate(values)
    ]
    svc.add_series(
        project,
        mtype,
        "pubsub_subscription",
        {"subscription_id": sub, "project_id": project},
        points,
        value_type=metric_pb2.MetricDescriptor.INT64,
    )


def test_pubsub_backlog_filter_value_and_timestamps(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    seed_sub(monitoring, "proj", "orders", 100, 200, 300)
    seed_sub(monitoring, "proj", "other", 5)
    src = PubsubSource(reader=reader(monitoring_server))
    [obs] = src.fetch([request("backlog", pubsub("proj", "orders"))], NOW)
    assert obs.ok, obs.error
    assert [s.value for s in obs.samples] == [100, 200, 300]  # oldest first
    assert obs.latest is not None and obs.latest.at == NOW - timedelta(seconds=30)
    [req] = monitoring.requests
    assert req.name == "projects/proj"
    terms = dict(parse_filter(req.filter))
    assert terms["metric.type"] == {BACKLOG}
    assert "resource.type" not in terms  # checked on the answer: series may lack it
    assert terms["resource.labels.subscription_id"] == {"orders"}
    assert list(req.aggregation.group_by_fields) == ["resource.labels.subscription_id"]
    assert req.aggregation.alignment_period.seconds == 60
    assert req.interval.end_time.ToSeconds() == int(NOW.timestamp())
    assert req.interval.start_time.ToSeconds() == int(NOW.timestamp()) - 300
    src.close()


def test_batching_many_policies_one_call_per_group(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    for p in ("a", "b"):
        for i in range(20):
            seed_sub(monitoring, p, f"sub-{i:03}", float(i * 10 + (p == "b")))
            seed_sub(monitoring, p, f"sub-{i:03}", float(i), mtype=AGE)
    reqs = [
        request("backlog", pubsub(p, f"sub-{i:03}"), policy=f"ns/{p}{i}")
        for p in ("a", "b")
        for i in range(20)
    ] + [
        request("age", pubsub("a", f"sub-{i:03}", "oldest_unacked_message_age"), policy=f"ns/x{i}")
        for i in range(20)
    ]
    src = PubsubSource(reader=reader(monitoring_server))
    out = src.fetch(reqs, NOW)
    assert len(monitoring.requests) == 3  # (a, backlog), (b, backlog), (a, age)
    for r, obs in zip(reqs, out, strict=True):
        assert obs.metric == r.metric.name
        assert obs.ok, obs.error
    values = [o.latest.value for o in out if o.latest]
    assert values[:20] == [i * 10 for i in range(20)]
    assert values[20:40] == [i * 10 + 1 for i in range(20)]
    assert values[40:] == list(range(20))
    one_of = [r.filter for r in monitoring.requests if "one_of" in r.filter]
    assert len(one_of) == 3


def test_unbatched_reader_makes_one_call_per_request(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    for i in range(5):
        seed_sub(monitoring, "p", f"sub-{i}", i)
    src = PubsubSource(reader=reader(monitoring_server, batch=False))
    out = src.fetch([request("b", pubsub("p", f"sub-{i}")) for i in range(5)], NOW)
    assert [o.latest.value for o in out if o.latest] == [0, 1, 2, 3, 4]
    assert len(monitoring.requests) == 5


def test_large_groups_are_chunked(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    for i in range(7):
        seed_sub(monitoring, "p", f"sub-{i}", i)
    src = PubsubSource(reader=reader(monitoring_server, max_values_per_call=3))
    out = src.fetch([request("b", pubsub("p", f"sub-{i}")) for i in range(7)], NOW)
    assert [o.latest.value for o in out if o.latest] == list(range(7))
    assert len(monitoring.requests) == 3


def test_bigtable_clusters_split_by_instance_and_cluster(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    def seed(inst: str, cl: str, *vals: float) -> None:
        for j, v in enumerate(vals):  # several series per cluster: the reducer means them
            monitoring.add_series(
                "p",
                CPU,
                "bigtable_cluster",
                {"instance": inst, "cluster": cl},
                [(NOW - timedelta(seconds=90), v)],
                metric_labels={"x": str(j)},
            )

    seed("i1", "c1", 0.5, 0.7)
    seed("i1", "c2", 0.2)
    seed("i2", "c1", 0.9)
    reqs = [
        request("cpu", bigtable("p", i, c)) for i, c in (("i1", "c1"), ("i1", "c2"), ("i2", "c1"))
    ]
    out = bt.BigtableSource(reader=reader(monitoring_server)).fetch(reqs, NOW)
    assert [round(o.latest.value, 6) for o in out if o.latest] == [0.6, 0.2, 0.9]
    [req] = monitoring.requests
    terms = dict(parse_filter(req.filter))
    assert terms["resource.labels.instance"] == {"i1", "i2"}
    assert terms["resource.labels.cluster"] == {"c1", "c2"}
    assert "resource.type" not in terms
    assert "REDUCE_MEAN" in str(req.aggregation)


def test_bigtable_bytes_used_helper(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    for kind, value in (("SSD", 3e12), ("HDD", 1e12)):
        monitoring.add_series(
            "p",
            bt.BYTES_USED,
            "bigtable_cluster",
            {"instance": "i", "cluster": "c"},
            [(NOW - timedelta(seconds=70), value)],
            metric_labels={"storage_type": kind},
            value_type=metric_pb2.MetricDescriptor.INT64,
        )
    [obs] = bt.read_bytes_used([("p", "i", "c")], NOW, reader=reader(monitoring_server))
    assert obs.latest is not None and obs.latest.value == 4e12
    assert obs.metric == "bytes_used:p/i/c"


def test_paging_is_followed(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    monitoring.page_size_cap = 2
    for i in range(5):
        seed_sub(monitoring, "p", f"sub-{i}", 10 + i)
    out = PubsubSource(reader=reader(monitoring_server)).fetch(
        [request("b", pubsub("p", f"sub-{i}")) for i in range(5)], NOW
    )
    assert [o.latest.value for o in out if o.latest] == [10, 11, 12, 13, 14]
    assert [r.page_token for r in monitoring.requests] == ["", "2", "4"]


def cm(flt: str, **kw: object) -> dict[str, object]:
    return {"cloudMonitoring": {"project": "p", "filter": flt, **kw}}


def test_partial_newest_point_of_a_rate_is_dropped(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    mtype = "custom.googleapis.com/requests"
    monitoring.add_series(
        "p",
        mtype,
        "global",
        {},
        [
            (NOW - timedelta(seconds=120), 5.0),
            (NOW - timedelta(seconds=60), 6.0),
            (NOW - timedelta(seconds=10), 0.5),  # still filling up
        ],
        metric_kind=metric_pb2.MetricDescriptor.DELTA,
    )
    src = CloudMonitoringSource(reader=reader(monitoring_server))
    [rate] = src.fetch([request("rps", cm(f'metric.type = "{mtype}"', aligner="ALIGN_RATE"))], NOW)
    assert [s.value for s in rate.samples] == [5.0, 6.0]


def test_gauge_keeps_newest_point_and_never_returns_future_points(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    seed_sub(monitoring, "p", "sub", 1, 2, last_age=5)
    [obs] = PubsubSource(reader=reader(monitoring_server)).fetch(
        [request("b", pubsub("p", "sub"))], NOW
    )
    assert obs.latest is not None and obs.latest.at == NOW - timedelta(seconds=5)
    assert all(s.at <= NOW for s in obs.samples)


def test_stale_sample_keeps_its_timestamp(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    seed_sub(monitoring, "p", "sub", 42, last_age=170)  # Pub/Sub data visible late
    [obs] = PubsubSource(reader=reader(monitoring_server)).fetch(
        [request("b", pubsub("p", "sub"))], NOW
    )
    assert obs.latest is not None
    assert (NOW - obs.latest.at).total_seconds() == 170


@pytest.mark.parametrize(
    ("code", "times", "kind", "calls", "words"),
    [
        pytest.param(
            grpc.StatusCode.UNAVAILABLE,
            5,
            "unavailable",
            3,
            ["unavailable"],
            id="unavailable-retried-3x",
        ),
        pytest.param(
            grpc.StatusCode.INTERNAL, 5, "error", 3, ["internal"], id="internal-retried-3x"
        ),
        pytest.param(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            5,
            "quota",
            1,
            ["quota", "6,000"],
            id="quota-not-retried",
        ),
        pytest.param(
            grpc.StatusCode.PERMISSION_DENIED,
            5,
            "permission",
            1,
            ["monitoring.timeSeries.list", "roles/monitoring.viewer"],
            id="permission-permanent",
        ),
        pytest.param(
            grpc.StatusCode.UNAUTHENTICATED,
            5,
            "permission",
            1,
            ["roles/monitoring.viewer"],
            id="unauthenticated",
        ),
        pytest.param(
            # re-sent without aggregation, then without the label term, then without both (a
            # server that takes less than Cloud Monitoring), then given up
            grpc.StatusCode.INVALID_ARGUMENT,
            5,
            "invalid",
            4,
            ["rejected"],
            id="invalid-argument",
        ),
        pytest.param(grpc.StatusCode.NOT_FOUND, 5, "not_found", 1, ["not found"], id="not-found"),
        pytest.param(
            grpc.StatusCode.UNAVAILABLE, 1, None, 2, [], id="transient-unavailable-recovers"
        ),
        pytest.param(
            grpc.StatusCode.DEADLINE_EXCEEDED, 2, None, 3, [], id="transient-deadline-recovers"
        ),
    ],
)
def test_failure_classes(
    monitoring: FakeMetricService,
    monitoring_server: MonitoringServer,
    code: grpc.StatusCode,
    times: int,
    kind: str | None,
    calls: int,
    words: list[str],
) -> None:
    seed_sub(monitoring, "p", "sub", 7)
    monitoring.fail(code, f"injected {code.name}", times=times)
    r = reader(monitoring_server)
    [obs] = PubsubSource(reader=r).fetch([request("b", pubsub("p", "sub"))], NOW)
    assert len(monitoring.requests) == calls
    if kind is None:
        assert obs.ok and obs.latest is not None and obs.latest.value == 7
        assert r.stats.retries == calls - 1
    else:
        assert obs.error_kind == kind and obs.error is not None
        for w in words:
            assert w.lower() in obs.error.lower()
        assert obs.metric == "b"


def test_client_deadline_is_bounded(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    seed_sub(monitoring, "p", "sub", 7)
    monitoring.delay(1.0, times=2)
    r = reader(monitoring_server, timeout_seconds=0.2, attempts=2)
    [obs] = PubsubSource(reader=r).fetch([request("b", pubsub("p", "sub"))], NOW)
    assert obs.error_kind == "deadline"
    assert r.stats.retries == 1


def test_one_failing_group_does_not_affect_another(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    seed_sub(monitoring, "good", "sub", 1)
    seed_sub(monitoring, "bad", "sub", 2)
    monitoring.fail(
        grpc.StatusCode.PERMISSION_DENIED, times=1, match=lambda r: r.name == "projects/bad"
    )
    out = PubsubSource(reader=reader(monitoring_server)).fetch(
        [request("x", pubsub("bad", "sub")), request("y", pubsub("good", "sub"))], NOW
    )
    assert out[0].error_kind == "permission"
    assert out[1].ok


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        pytest.param(math.nan, "invalid", id="nan"),
        pytest.param(math.inf, "invalid", id="inf"),
        pytest.param(-3.0, "invalid", id="negative-backlog"),
        pytest.param(None, "empty", id="no-series"),
    ],
)
def test_bad_values(
    monitoring: FakeMetricService,
    monitoring_server: MonitoringServer,
    value: float | None,
    kind: str,
) -> None:
    if value is not None:
        monitoring.add_series(
            "p",
            BACKLOG,
            "pubsub_subscription",
            {"subscription_id": "sub"},
            [(NOW - timedelta(seconds=60), value)],
        )
    [obs] = PubsubSource(reader=reader(monitoring_server)).fetch(
        [request("b", pubsub("p", "sub"))], NOW
    )
    assert obs.error_kind == kind, obs


def test_several_series_without_reducer_is_invalid(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    mtype = "custom.googleapis.com/q"
    for z in ("a", "b"):
        monitoring.add_series(
            "p", mtype, "global", {"zone": z}, [(NOW - timedelta(seconds=60), 1.0)]
        )
    src = CloudMonitoringSource(reader=reader(monitoring_server))
    [obs] = src.fetch([request("q", cm(f'metric.type = "{mtype}"', reducer="REDUCE_NONE"))], NOW)
    assert obs.error_kind == "invalid" and "2 time series" in (obs.error or "")
    [summed] = src.fetch([request("q", cm(f'metric.type = "{mtype}"'))], NOW)
    assert summed.latest is not None and summed.latest.value == 2.0


def test_identical_generic_queries_share_one_call(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    mtype = "custom.googleapis.com/q"
    monitoring.add_series("p", mtype, "global", {}, [(NOW - timedelta(seconds=60), 3.0)])
    src = CloudMonitoringSource(reader=reader(monitoring_server))
    out = src.fetch(
        [request("q", cm(f'metric.type = "{mtype}"'), f"ns/p{i}") for i in range(4)], NOW
    )
    assert all(o.latest and o.latest.value == 3.0 for o in out)
    assert len(monitoring.requests) == 1


def test_endpoint_from_environment(
    monitoring: FakeMetricService,
    monitoring_server: MonitoringServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEMINI_MONITORING_ENDPOINT", monitoring_server.endpoint)
    seed_sub(monitoring, "p", "sub", 9)
    [obs] = PubsubSource().fetch([request("b", pubsub("p", "sub"))], NOW)
    assert obs.latest is not None and obs.latest.value == 9


def test_wrong_kind_of_request_is_a_value_not_an_exception(
    monitoring_server: MonitoringServer,
) -> None:
    [obs] = PubsubSource(reader=reader(monitoring_server)).fetch(
        [request("c", bigtable("p", "i", "c"))], NOW
    )
    assert obs.error_kind == "invalid"


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.dictionaries(
        st.sampled_from([f"s{i}" for i in range(12)]),
        st.one_of(st.none(), st.integers(0, 10_000)),
        min_size=1,
    )
)
def test_batched_equals_unbatched(
    monitoring_server: MonitoringServer, subs: dict[str, int | None]
) -> None:
    svc = monitoring_server.service
    svc.clear()
    for sub, value in subs.items():
        if value is not None:
            seed_sub(svc, "p", sub, value)
    queries = [
        SeriesQuery(
            name=sub,
            project="p",
            filter=f'metric.type = "{BACKLOG}"',
            split=(("resource.labels.subscription_id", sub),),
        )
        for sub in subs
    ]
    batched = reader(monitoring_server).read(queries, NOW)
    calls = len(svc.requests)
    single = reader(monitoring_server, batch=False).read(queries, NOW)
    # a group with no data anywhere is re-read one subscription per call (one_of misread?)
    assert calls == (
        1 if len(subs) == 1 or any(v is not None for v in subs.values()) else 1 + len(subs)
    )
    assert [(o.samples, o.error_kind) for o in batched] == [
        (o.samples, o.error_kind) for o in single
    ]
    svc.clear()


def test_read_budget_bounds_a_slow_cycle(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    import time

    for p in ("p1", "p2", "p3"):
        seed_sub(monitoring, p, "sub", 1)
    monitoring.delay(1.0, times=50)
    r = reader(monitoring_server, timeout_seconds=0.3, attempts=10, budget_seconds=0.7)
    start = time.monotonic()
    out = PubsubSource(reader=r).fetch(
        [request("b", pubsub(p, "sub")) for p in ("p1", "p2", "p3")], NOW
    )
    # without the budget: 10 attempts x 0.3 s plus backoff, over 3 s
    assert time.monotonic() - start < 2.5
    assert [o.error_kind for o in out] == ["deadline"] * 3
    assert len(monitoring.requests) <= 3 * 3  # retries stop when the budget is spent


def test_groups_are_read_concurrently(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    for i in range(4):
        seed_sub(monitoring, f"p{i}", "sub", i)
    monitoring.delay(0.4, times=4)  # each call is still being served when the others arrive
    out = PubsubSource(reader=reader(monitoring_server)).fetch(
        [request("b", pubsub(f"p{i}", "sub")) for i in range(4)], NOW
    )
    assert monitoring.max_in_flight == 4  # 1 if the groups were read one after another
    assert [o.latest.value for o in out if o.latest] == [0, 1, 2, 3]


def test_sloppy_server_unfiltered_and_unreduced_series(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    """A server that ignores the filter and the reducer still yields the right values: series
    of other metric types are dropped and a split's several series are reduced client-side."""
    monitoring.honor_filter = False
    monitoring.honor_reducer = False
    for sub, parts in (("orders", (10, 20)), ("emails", (5,))):
        for j, v in enumerate(parts):
            monitoring.add_series(
                "p",
                BACKLOG,
                "pubsub_subscription",
                {"subscription_id": sub},
                [(NOW - timedelta(seconds=60), v)],
                metric_labels={"part": str(j)},
            )
        monitoring.add_series(
            "p",
            AGE,
            "pubsub_subscription",
            {"subscription_id": sub},
            [(NOW - timedelta(seconds=60), 999)],
        )
    out = PubsubSource(reader=reader(monitoring_server)).fetch(
        [request("b", pubsub("p", "orders")), request("b", pubsub("p", "emails"))], NOW
    )
    assert [o.latest.value for o in out if o.latest] == [30, 5]


def test_no_credentials_is_a_permission_failure(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gemini.metrics import cloud_monitoring

    monkeypatch.delenv("GEMINI_MONITORING_ENDPOINT", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json")
    monkeypatch.setattr(cloud_monitoring, "_CLIENTS", {})  # gemini's own cache, not the client
    [obs] = PubsubSource().fetch([request("b", pubsub("p", "sub"))], NOW)
    assert obs.error_kind == "permission"
    assert "roles/monitoring.viewer" in (obs.error or "")


@pytest.mark.parametrize(
    ("start", "end", "want"),
    [
        pytest.param((0, 0), (1_700_000_060, 500_000_000), 1_700_000_060.5, id="end-time"),
        pytest.param((1_700_000_000, 0), (0, 0), 1_700_000_000.0, id="only-start-time"),
        pytest.param(
            (1_700_000_000, 0), (1_700_000_060, 999), 1_700_000_060.0, id="nanos-below-us"
        ),
    ],
)
def test_point_times_from_raw_protobuf(
    start: tuple[int, int], end: tuple[int, int], want: float
) -> None:
    """Series are read as raw protobuf messages: a point's time is its end time (to the
    microsecond), or its start time when a server set only that."""
    from google.cloud.monitoring_v3.types import Point

    from gemini.metrics.cloud_monitoring import _point_time, _point_value

    point = Point.pb(Point())
    point.interval.start_time.seconds, point.interval.start_time.nanos = start
    point.interval.end_time.seconds, point.interval.end_time.nanos = end
    point.value.int64_value = 7
    at = _point_time(point)
    assert at.tzinfo is not None and at.timestamp() == want
    assert _point_value(point) == 7.0


def test_a_metric_window_longer_than_the_lookback_widens_the_interval(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer
) -> None:
    """`windowSeconds: 900` with `Max`: the engine reduces the samples one read returns, so the
    interval must reach back the whole window (it was the 300 s lookback: a 15-minute peak was
    invisible to the controller while the simulator, with the whole series, saw it)."""
    seed_sub(monitoring, "proj", "orders", *[float(v) for v in range(20)])  # 20 minutes
    src = PubsubSource(reader=reader(monitoring_server))
    m = metric("backlog", pubsub("proj", "orders"), windowSeconds=900, windowFunction="Max")
    [obs] = src.fetch([MetricRequest("default/p", "default", m)], NOW)
    assert obs.ok, obs.error
    [req] = monitoring.requests
    assert req.interval.start_time.ToSeconds() == int(NOW.timestamp()) - 960
    # every point of the window (and the alignment period before it) came back
    assert [s.value for s in obs.samples] == [float(v) for v in range(4, 20)]
    src.close()
