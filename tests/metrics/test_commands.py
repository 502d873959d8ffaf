"""`gemini metrics` and `gemini record`: the CLI against the local MetricService (real client),
including the acceptance check run as a subprocess with GEMINI_MONITORING_ENDPOINT."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.api import metric_pb2

from gemini.metrics import commands
from gemini.series import read_trace
from tests.fakes.monitoring import FakeMetricService, MonitoringServer, parse_filter
from tests.metrics.cli_support import BACKLOG, CPU, WORKER_AND_STORE, run_cli

POLICIES = WORKER_AND_STORE


def orders_backlog(svc: FakeMetricService, points: list[tuple[datetime, int]]) -> None:
    """The `orders` subscription's backlog series (the policies' Pub/Sub metric)."""
    svc.add_series(
        "acme",
        BACKLOG,
        "pubsub_subscription",
        {"subscription_id": "orders"},
        points,
        value_type=metric_pb2.MetricDescriptor.INT64,
    )


def seed(svc: FakeMetricService, now: datetime) -> None:
    orders_backlog(svc, [(now - timedelta(seconds=150), 4000), (now - timedelta(seconds=90), 4321)])
    svc.add_series(
        "acme",
        CPU,
        "bigtable_cluster",
        {"instance": "main", "cluster": "main-c1"},
        [(now - timedelta(seconds=100), 0.42), (now - timedelta(seconds=40), 0.73)],
    )


def test_metrics_json_shows_what_the_server_holds(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer, tmp_path: Path
) -> None:
    seed(monitoring, datetime.now(UTC))
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICIES)
    done = run_cli(["metrics", "--policy", str(policy), "--json"], monitoring_server.endpoint)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    by_name = {(r["policy"], r["name"]): r for r in rows}
    backlog = by_name[("jobs/worker", "backlog")]
    assert backlog["value"] == 4321 and backlog["status"] == "ok"
    assert 85 <= backlog["ageSeconds"] <= 120
    assert backlog["sampleTime"].endswith("Z")
    cpu = by_name[("default/store", "cpu")]
    assert cpu["value"] == pytest.approx(0.73) and cpu["status"] == "ok"
    age = by_name[("jobs/worker", "age")]
    assert age["status"] == "missing" and age["errorKind"] == "empty" and age["value"] is None
    # one call per (project, metric type) group: backlog, age, cpu
    assert len(monitoring.requests) == 3


def test_metrics_text_and_stale_status(
    monitoring: FakeMetricService,
    monitoring_server: MonitoringServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GEMINI_MONITORING_ENDPOINT", monitoring_server.endpoint)
    now = datetime.now(UTC)
    orders_backlog(monitoring, [(now - timedelta(seconds=250), 10)])
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICIES)
    assert commands.metrics_command(policy, False) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["POLICY", "METRIC", "SOURCE"]
    backlog = next(line for line in out if " backlog " in line)
    assert backlog.split()[3] == "10" and backlog.split()[-1] == "stale"
    cpu = next(line for line in out if " cpu " in line)
    assert "missing (empty)" in cpu


FORECAST = """\
apiVersion: autoscaling.gemini.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: worker, namespace: jobs}
spec:
  target: {kubernetes: {name: worker}}
  maxReplicas: 50
  metrics:
    - name: backlog
      source: {pubsub: {subscription: projects/acme/subscriptions/orders}}
      target: {type: AverageValue, averageValue: 100}
    - name: yesterday
      source: {pubsub: {subscription: projects/acme/subscriptions/orders}}
      target: {type: AverageValue, averageValue: 100}
      offsetSeconds: 82800
      fallback: {policy: Ignore}
"""


def test_metrics_marks_a_metric_read_from_the_past(
    monitoring: FakeMetricService,
    monitoring_server: MonitoringServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A forecast (`offsetSeconds`) shows the value of 23 h ago at a moved, recent time: the
    row says so, in JSON and in the table."""
    monkeypatch.setenv("GEMINI_MONITORING_ENDPOINT", monitoring_server.endpoint)
    now = datetime.now(UTC)
    orders_backlog(
        monitoring, [(now - timedelta(seconds=82800 + 60), 777), (now - timedelta(seconds=60), 10)]
    )
    policy = tmp_path / "p.yaml"
    policy.write_text(FORECAST)
    assert commands.metrics_command(policy, True) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["backlog"]["value"] == 10 and rows["backlog"]["offsetSeconds"] == 0
    past = rows["yesterday"]
    assert past["value"] == 777 and past["offsetSeconds"] == 82800
    assert 50 <= past["ageSeconds"] <= 120  # the moved time: as fresh as the present's
    assert commands.metrics_command(policy, False) == 0
    table = capsys.readouterr().out
    assert "yesterday (23 h back)" in table
    assert "backlog (" not in table


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param("spec: {}\n", "metadata", id="not-a-policy"),
        pytest.param("a: [\n", "invalid YAML", id="bad-yaml"),
        pytest.param(
            POLICIES.replace("maxReplicas: 50", "maxReplicas: 0"), "maxReplicas", id="bad-field"
        ),
    ],
)
def test_metrics_invalid_policy_exits_1(
    tmp_path: Path, text: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(text)
    assert commands.metrics_command(policy, True) == 1
    err = capsys.readouterr().err
    assert needle in err and str(policy) in err


def record(**kw: object) -> int:
    args: dict[str, object] = dict(
        policy=None,
        metric_name=None,
        project=None,
        filter_=None,
        aligner="ALIGN_MEAN",
        reducer="REDUCE_SUM",
        period=60,
        days=1.0,
        output=Path("unused.csv"),
    )
    args.update(kw)
    return commands.record_command(**args)  # type: ignore[arg-type]


def test_record_filter_to_trace(
    monitoring: FakeMetricService,
    monitoring_server: MonitoringServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEMINI_MONITORING_ENDPOINT", monitoring_server.endpoint)
    now = datetime.now(UTC).replace(microsecond=0)
    points = [(now - timedelta(minutes=m), float(m)) for m in range(1, 3 * 1440, 7)]
    monitoring.add_series("acme", "custom.googleapis.com/load", "global", {}, points)
    out = tmp_path / "t.csv"
    code = record(
        project="acme",
        filter_='metric.type = "custom.googleapis.com/load"',
        days=2.0,
        output=out,
        aligner="ALIGN_MAX",
        reducer="REDUCE_MAX",
    )
    assert code == 0
    trace = read_trace(out)
    expected = sorted(p for p in points if p[0] >= now - timedelta(days=2))
    assert len(trace) == len(expected)
    assert list(trace.values) == [v for _, v in expected]
    [req] = monitoring.requests
    assert "ALIGN_MAX" in str(req.aggregation) and "REDUCE_MAX" in str(req.aggregation)


def test_record_policy_metric(
    monitoring: FakeMetricService,
    monitoring_server: MonitoringServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEMINI_MONITORING_ENDPOINT", monitoring_server.endpoint)
    seed(monitoring, datetime.now(UTC))
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICIES)
    out = tmp_path / "cpu.csv"
    assert record(policy=policy, metric_name="cpu", output=out, days=0.5) == 0
    assert list(read_trace(out).values) == [0.42, 0.73]
    [req] = monitoring.requests
    assert dict(parse_filter(req.filter))["resource.labels.cluster"] == {"main-c1"}
    span = req.interval.end_time.ToSeconds() - req.interval.start_time.ToSeconds()
    assert span == 43200


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        pytest.param({}, "--project and --filter", id="nothing"),
        pytest.param(
            {"project": "p", "filter_": 'metric.type = "x"', "days": 0}, "--days", id="days"
        ),
        pytest.param(
            {"project": "p", "filter_": 'metric.type = "x"', "aligner": "MEAN"},
            "--aligner",
            id="aligner",
        ),
        pytest.param(
            {"project": "p", "filter_": 'metric.type = "x"', "period": 10},
            "--alignment-period",
            id="period",
        ),
        pytest.param(
            {"project": "p", "filter_": 'metric.type = "nothing"'}, "empty", id="empty-series"
        ),
    ],
)
def test_record_errors(
    monitoring: FakeMetricService,
    monitoring_server: MonitoringServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    kw: dict[str, object],
    needle: str,
) -> None:
    monkeypatch.setenv("GEMINI_MONITORING_ENDPOINT", monitoring_server.endpoint)
    assert record(output=tmp_path / "x.csv", **kw) == 1
    assert needle in capsys.readouterr().err


def test_record_needs_a_monitoring_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICIES)
    assert record(policy=policy, output=tmp_path / "x.csv") == 1  # several metrics, none chosen
    assert "--metric" in capsys.readouterr().err
    assert record(policy=policy, metric_name="nope", output=tmp_path / "x.csv") == 1


def test_record_through_the_cli(
    monitoring: FakeMetricService, monitoring_server: MonitoringServer, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    monitoring.add_series(
        "acme",
        "custom.googleapis.com/load",
        "global",
        {},
        [(now - timedelta(minutes=m), float(m)) for m in (3, 2, 1)],
    )
    out = tmp_path / "load.csv"
    done = run_cli(
        [
            "record",
            "--project",
            "acme",
            "--filter",
            'metric.type = "custom.googleapis.com/load"',
            "--aligner",
            "ALIGN_MAX",
            "--alignment-period",
            "60",
            "--days",
            "0.01",
            "-o",
            str(out),
        ],
        monitoring_server.endpoint,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote 3 samples" in done.stdout
    assert list(read_trace(out).values) == [3.0, 2.0, 1.0]
