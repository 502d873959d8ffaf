"""The Pub/Sub and Bigtable sources against MetricServices that implement less than Cloud
Monitoring (tests/fakes/naive_monitoring.py): no one_of, no aggregation, filters ignored or
half-understood, unlabelled series, raw per-zone series, int64 points in either order, clock skew,
a stuck page token. The real google-cloud-monitoring client over a plaintext channel."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gemini.metrics.bigtable import BigtableSource
from gemini.metrics.cloud_monitoring import MonitoringReader
from gemini.metrics.pubsub import PubsubSource
from gemini.series import Observation
from tests.fakes.naive_monitoring import NaiveMetricService, NaiveServer
from tests.metrics.conftest import NOW, bigtable, pubsub, request

BACKLOG = "pubsub.googleapis.com/subscription/num_undelivered_messages"
AGE = "pubsub.googleapis.com/subscription/oldest_unacked_message_age"
CPU = "bigtable.googleapis.com/cluster/cpu_load"

SUBS = {"orders": 4321, "invoices": 17, "emails": 0}


def ago(seconds: float) -> Any:
    return NOW - timedelta(seconds=seconds)


def seed(svc: NaiveMetricService, *, resource_type: bool = True) -> None:
    """What a plausible test server holds: raw Pub/Sub points (int64, every 60 s), per-zone
    Bigtable CPU series with points a few seconds apart, and decoys it should filter out."""
    for sub, value in SUBS.items():
        svc.add(
            "acme",
            BACKLOG,
            {"subscription_id": sub, "project_id": "acme"},
            [(ago(135), value + 50), (ago(75), value + 10), (ago(15), value)],
            resource_type="pubsub_subscription" if resource_type else "",
        )
        svc.add(  # another metric of the same subscription
            "acme",
            AGE,
            {"subscription_id": sub, "project_id": "acme"},
            [(ago(15), 999)],
            resource_type="pubsub_subscription" if resource_type else "",
        )
    bt_type = "bigtable_cluster" if resource_type else ""
    for zone, load in (("us-east1-b", 0.6), ("us-east1-c", 0.8)):
        svc.add(
            "acme",
            CPU,
            {"project": "acme", "instance": "main", "cluster": "main-c1", "zone": zone},
            [(ago(72), load - 0.1), (ago(12 if zone.endswith("b") else 9), load)],
            resource_type=bt_type,
        )
    svc.add(
        "acme",
        CPU,
        {"project": "acme", "instance": "main", "cluster": "main-c2", "zone": "us-east1-d"},
        [(ago(20), 0.25)],
        resource_type=bt_type,
    )
    svc.add(  # same ids in another project: never ours
        "elsewhere",
        BACKLOG,
        {"subscription_id": "orders", "project_id": "elsewhere"},
        [(ago(15), 1_000_000)],
        resource_type="pubsub_subscription" if resource_type else "",
    )


def read_all(endpoint: str, reader: MonitoringReader | None = None) -> list[Observation]:
    reader = reader or MonitoringReader(endpoint=endpoint, backoff_seconds=0.001)
    subs = PubsubSource(reader=reader).fetch(
        [request("backlog", pubsub("acme", s), f"ns/{s}") for s in SUBS], NOW
    )
    clusters = BigtableSource(reader=reader).fetch(
        [request("cpu", bigtable("acme", "main", c), f"ns/{c}") for c in ("main-c1", "main-c2")],
        NOW,
    )
    return subs + clusters


def check(out: list[Observation]) -> None:
    for obs in out:
        assert obs.ok, obs.error
    values = [o.latest.value for o in out if o.latest]
    assert values[:3] == list(SUBS.values())
    assert values[3] == pytest.approx(0.7)  # mean of the two zones' newest points
    assert values[4] == pytest.approx(0.25)
    latest = [o.latest.at for o in out if o.latest]
    assert latest == [ago(15)] * 3 + [ago(9), ago(20)]
    assert all(s.at <= NOW for o in out for s in o.samples)


@pytest.fixture
def naive() -> Iterator[tuple[NaiveMetricService, str]]:
    svc = NaiveMetricService()
    with NaiveServer(svc) as server:
        yield svc, server.endpoint


BEHAVIOURS = [
    pytest.param({}, True, id="rejects-one_of"),
    pytest.param({"one_of": "nothing"}, True, id="one_of-matches-nothing"),
    pytest.param({"one_of": "ignore"}, True, id="one_of-ignored"),
    pytest.param({"one_of": "ignore", "strip_labels": True}, True, id="unlabelled-series"),
    pytest.param({"match": "metric-type"}, True, id="matches-metric-type-only"),
    pytest.param(
        {"match": "none", "one_of": "ignore", "ignore_project": True}, True, id="filter-ignored"
    ),
    pytest.param({"aggregation": "reject"}, True, id="rejects-aggregation"),
    pytest.param({"singular_labels": True}, True, id="rejects-label-filters"),
    pytest.param(
        {"singular_labels": True, "aggregation": "reject"},
        True,
        id="rejects-labels-and-aggregation",
    ),
    pytest.param({"order": "oldest", "honor_interval": True}, True, id="oldest-first-interval"),
    pytest.param({}, False, id="no-resource-type"),
]


@pytest.mark.parametrize(("knobs", "resource_type"), BEHAVIOURS)
def test_values_from_a_naive_server(knobs: dict[str, Any], resource_type: bool) -> None:
    svc = NaiveMetricService(**knobs)
    seed(svc, resource_type=resource_type)
    with NaiveServer(svc) as server:
        check(read_all(server.endpoint))


def test_what_worked_is_remembered(naive: tuple[NaiveMetricService, str]) -> None:
    svc, endpoint = naive
    svc.aggregation = "reject"
    seed(svc)
    reader = MonitoringReader(endpoint=endpoint, backoff_seconds=0.001)
    check(read_all(endpoint, reader))
    first = len(svc.requests)
    assert not reader.one_of_supported and not reader.aggregation_supported
    assert reader.stats.fallbacks["raw"] >= 1 and reader.stats.fallbacks["unbatched"] == 2
    svc.requests.clear()
    check(read_all(endpoint, reader))
    assert len(svc.requests) == 5 < first  # one call per resource, nothing rejected
    assert all(not r.aggregation.per_series_aligner for r in svc.requests)
    assert all("one_of" not in r.filter for r in svc.requests)


def test_a_server_that_does_everything_keeps_one_call_per_group() -> None:
    """Against the regular fake (one_of, reducers) the fallbacks never trigger."""
    from tests.fakes.monitoring import MonitoringServer

    with MonitoringServer() as server:
        svc = server.service
        for sub, value in SUBS.items():
            svc.add_series(
                "acme", BACKLOG, "pubsub_subscription", {"subscription_id": sub}, [(ago(15), value)]
            )
        reader = MonitoringReader(endpoint=server.endpoint)
        out = PubsubSource(reader=reader).fetch(
            [request("backlog", pubsub("acme", s), f"ns/{s}") for s in SUBS], NOW
        )
        assert [o.latest.value for o in out if o.latest] == list(SUBS.values())
        assert len(svc.requests) == 1 and not reader.stats.fallbacks


@pytest.mark.parametrize(
    ("ahead", "expected_at", "kind"),
    [
        pytest.param(0, NOW, None, id="exactly-now"),
        pytest.param(5, NOW, None, id="5s-skew-read-as-now"),
        pytest.param(59, NOW, None, id="59s-skew-read-as-now"),
        pytest.param(600, None, "empty", id="10min-ahead-dropped"),
    ],
)
def test_clock_skew(
    naive: tuple[NaiveMetricService, str],
    ahead: float,
    expected_at: Any,
    kind: str | None,
) -> None:
    svc, endpoint = naive
    svc.add("acme", BACKLOG, {"subscription_id": "sub"}, [(NOW + timedelta(seconds=ahead), 12)])
    [obs] = PubsubSource(reader=MonitoringReader(endpoint=endpoint)).fetch(
        [request("b", pubsub("acme", "sub"))], NOW
    )
    assert obs.error_kind == kind
    if kind is None:
        assert obs.latest is not None and obs.latest.at == expected_at
        assert obs.latest.value == 12
    else:
        assert "check the clocks" in (obs.error or "")


def test_skewed_points_collapse_onto_now(naive: tuple[NaiveMetricService, str]) -> None:
    svc, endpoint = naive
    points: list[tuple[Any, int | float]] = [(ago(50), 1), (ago(-3), 2), (ago(-8), 3)]
    svc.add("acme", BACKLOG, {"subscription_id": "sub"}, points)
    [obs] = PubsubSource(reader=MonitoringReader(endpoint=endpoint)).fetch(
        [request("b", pubsub("acme", "sub"))], NOW
    )
    assert [(s.at, s.value) for s in obs.samples] == [(ago(50), 1), (NOW, 3)]


def test_a_repeated_page_token_ends_the_read(naive: tuple[NaiveMetricService, str]) -> None:
    svc, endpoint = naive
    svc.stuck_page_token = True
    svc.add("acme", BACKLOG, {"subscription_id": "sub"}, [(ago(30), 5)])
    [obs] = PubsubSource(reader=MonitoringReader(endpoint=endpoint)).fetch(
        [request("b", pubsub("acme", "sub"))], NOW
    )
    assert len(svc.requests) == 2  # "" then "more"; "more" again is not followed
    assert obs.latest is not None and obs.latest.value == 5  # the repeated page is dropped


def test_a_genuinely_bad_query_still_fails(naive: tuple[NaiveMetricService, str]) -> None:
    """The fallbacks do not hide a rejected query: INVALID_ARGUMENT stays `invalid`."""
    from gemini.metrics.cloud_monitoring import CloudMonitoringSource

    _, endpoint = naive
    cm = {
        "cloudMonitoring": {
            "project": "acme",
            "filter": 'metric.type = "x" AND resource.labels.zone != "a"',
        }
    }
    [obs] = CloudMonitoringSource(reader=MonitoringReader(endpoint=endpoint)).fetch(
        [request("q", cm)], NOW
    )
    assert obs.error_kind == "invalid" and "cannot parse" in (obs.error or "")


@pytest.mark.parametrize("aggregation", ["ignore", "reject"])
def test_a_lone_resource_whose_label_filter_is_rejected(
    naive: tuple[NaiveMetricService, str], aggregation: Any
) -> None:
    svc, endpoint = naive
    svc.singular_labels = True
    svc.aggregation = aggregation
    seed(svc)
    [obs] = PubsubSource(reader=MonitoringReader(endpoint=endpoint)).fetch(
        [request("b", pubsub("acme", "invoices"))], NOW
    )
    assert obs.latest is not None and obs.latest.value == SUBS["invoices"]
    assert "subscription_id" not in svc.requests[-1].filter


def test_project_number_in_the_path_skips_the_project_label_check(
    naive: tuple[NaiveMetricService, str],
) -> None:
    """Series carry the project ID; a policy may name the project by number."""
    svc, endpoint = naive
    svc.ignore_project = True
    svc.add("acme", BACKLOG, {"subscription_id": "sub", "project_id": "acme"}, [(ago(30), 8)])
    reader = MonitoringReader(endpoint=endpoint)
    [by_number, by_other_id] = PubsubSource(reader=reader).fetch(
        [request("b", pubsub("123456", "sub")), request("b", pubsub("other", "sub"))], NOW
    )
    assert by_number.latest is not None and by_number.latest.value == 8
    assert by_other_id.error_kind == "empty"


@pytest.fixture(scope="module")
def both_servers() -> Iterator[tuple[Any, NaiveServer]]:
    from tests.fakes.monitoring import MonitoringServer

    with MonitoringServer() as full, NaiveServer(NaiveMetricService()) as naive:
        yield full, naive


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.dictionaries(
        st.sampled_from(["orders", "invoices", "emails", "audits"]),
        st.lists(st.lists(st.integers(0, 10_000), min_size=2, max_size=2), min_size=1, max_size=3),
        min_size=1,
    )
)
def test_client_side_reduction_equals_the_servers(
    both_servers: tuple[Any, NaiveServer], parts: dict[str, list[list[int]]]
) -> None:
    """Several series per subscription (two points each): the naive server's raw series,
    reduced here, read the same as the full fake's server-side REDUCE_SUM."""
    full, naive = both_servers
    full.service.clear()
    naive.service.held.clear()
    for sub, series in parts.items():
        for j, (older, newer) in enumerate(series):
            points: list[tuple[Any, int | float]] = [(ago(90), older), (ago(30), newer)]
            labels = {"subscription_id": sub, "part": str(j)}
            full.service.add_series("acme", BACKLOG, "pubsub_subscription", labels, points)
            naive.service.add("acme", BACKLOG, labels, points)
    reqs = [request("b", pubsub("acme", sub), f"ns/{sub}") for sub in parts]
    server_side = PubsubSource(reader=MonitoringReader(endpoint=full.endpoint)).fetch(reqs, NOW)
    client_side = PubsubSource(reader=MonitoringReader(endpoint=naive.endpoint)).fetch(reqs, NOW)
    assert [o.samples for o in client_side] == [o.samples for o in server_side]
    assert all(o.ok for o in client_side)
