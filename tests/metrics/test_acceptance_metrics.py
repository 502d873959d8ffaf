"""Acceptance: `gemini metrics --policy P --json` (a real subprocess, GEMINI_MONITORING_ENDPOINT)
shows the Pub/Sub backlog and Bigtable CPU that a MetricService holds, when that server is not
ours: the naive one (tests/fakes/naive_monitoring.py) in several of its plausible behaviours."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.naive_monitoring import NaiveMetricService, NaiveServer
from tests.metrics.cli_support import AGE, BACKLOG, CPU, WORKER_AND_STORE, run_cli

EXTRA = """\
---
apiVersion: autoscaling.gemini.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: billing, namespace: jobs}
spec:
  target: {kubernetes: {name: billing}}
  minReplicas: 1
  maxReplicas: 10
  metrics:
    - name: backlog
      source: {pubsub: {subscription: projects/acme/subscriptions/invoices}}
      target: {type: AverageValue, averageValue: 100}
---
apiVersion: autoscaling.gemini.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: archive}
spec:
  target: {bigtable: {project: acme, instance: main, cluster: main-c2}}
  minReplicas: 1
  maxReplicas: 5
  metrics:
    - name: cpu
      source: {bigtable: {project: acme, instance: main, cluster: main-c2}}
      target: {type: Utilization, averageUtilization: 60}
"""
POLICIES = WORKER_AND_STORE + EXTRA

EXPECTED = {
    ("jobs/worker", "backlog"): 4321.0,
    ("jobs/worker", "age"): 42.0,
    ("jobs/billing", "backlog"): 17.0,
    ("default/store", "cpu"): 0.7,  # mean of the cluster's two zone series
    ("default/archive", "cpu"): 0.25,
}


def seed(svc: NaiveMetricService, now: datetime, *, resource_type: bool, skew: float) -> None:
    def at(seconds: float) -> datetime:
        return now - timedelta(seconds=seconds)

    pubsub_type = "pubsub_subscription" if resource_type else ""
    for sub, backlog, age in (("orders", 4321, 42), ("invoices", 17, 3)):
        labels = {"project_id": "acme", "subscription_id": sub}
        newest = at(-skew)  # the server's clock may run ahead of ours
        svc.add("acme", BACKLOG, labels, [(at(70), backlog + 9), (newest, backlog)],
                resource_type=pubsub_type)  # fmt: skip
        svc.add("acme", AGE, labels, [(at(70), age + 60), (newest, age)], resource_type=pubsub_type)
    bt_type = "bigtable_cluster" if resource_type else ""
    for cluster, zone, load, newest_age in (
        ("main-c1", "us-east1-b", 0.6, 12),
        ("main-c1", "us-east1-c", 0.8, 9),
        ("main-c2", "us-east1-d", 0.25, 20),
    ):
        labels = {"project": "acme", "instance": "main", "cluster": cluster, "zone": zone}
        svc.add("acme", CPU, labels, [(at(75), 0.99), (at(newest_age), load)],
                resource_type=bt_type)  # fmt: skip


@pytest.mark.parametrize(
    ("knobs", "resource_type", "skew"),
    [
        pytest.param({}, True, 0.0, id="exact-filters-only-no-aggregation"),
        pytest.param(
            {"aggregation": "reject", "order": "oldest"}, False, 3.0, id="rejects-aggregation-skew"
        ),
        pytest.param(
            {"singular_labels": True, "aggregation": "reject"},
            False,
            2.0,
            id="rejects-label-filters-and-aggregation",
        ),
        pytest.param(
            {"match": "none", "one_of": "ignore", "ignore_project": True},
            True,
            0.0,
            id="ignores-the-filter",
        ),
    ],
)
def test_gemini_metrics_json_against_a_naive_server(
    tmp_path: Path, knobs: dict[str, Any], resource_type: bool, skew: float
) -> None:
    svc = NaiveMetricService(**knobs)
    seed(svc, datetime.now(UTC), resource_type=resource_type, skew=skew)
    svc.add(  # a decoy with the same ids in another project
        "elsewhere",
        BACKLOG,
        {"project_id": "elsewhere", "subscription_id": "orders"},
        [(datetime.now(UTC) - timedelta(seconds=5), 999_999)],
    )
    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICIES)
    with NaiveServer(svc) as server:
        proc = run_cli(["metrics", "--policy", str(policy), "--json"], server.endpoint)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    got = {(r["policy"], r["name"]): r for r in rows}
    assert set(got) == set(EXPECTED)
    for key, value in EXPECTED.items():
        r = got[key]
        assert r["status"] == "ok", r
        assert r["value"] == pytest.approx(value), r
        assert r["errorKind"] is None and r["error"] is None
        assert 0 <= r["ageSeconds"] < 60, r  # a skewed newest point reads as "now", not future
    assert svc.requests, "the CLI did not talk to the server"
