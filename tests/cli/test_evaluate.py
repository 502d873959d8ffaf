"""`gemini evaluate` through the real CLI: HPA v2 conformance on a first tick.

Each case writes a ScalingPolicy manifest, runs `gemini evaluate --json` through typer's runner
and checks desiredReplicas and the reason codes (outcome first). Expected values are worked by
hand from the HPA documentation and horizontal.go / replica_calculator.go.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gemini.cli import app

PROM = {"prometheus": {"serverAddress": "http://prom:9090", "query": "up"}}


def metric(name: str, target: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "source": PROM, "target": target, **extra}


def value(v: float | str) -> dict[str, Any]:
    return {"type": "Value", "value": v}


def average(v: float | str) -> dict[str, Any]:
    return {"type": "AverageValue", "averageValue": v}


def utilization(pct: int) -> dict[str, Any]:
    return {"type": "Utilization", "averageUtilization": pct}


def manifest(
    metrics: list[dict[str, Any]],
    *,
    min_replicas: int = 1,
    max_replicas: int = 100,
    behavior: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "target": {"kubernetes": {"name": "web"}},
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "metrics": metrics,
        **spec,
    }
    if behavior is not None:
        body["behavior"] = behavior
    return {
        "apiVersion": "autoscaling.gemini.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": body,
    }


HPA_DOCS_DOWN = {
    "scaleDown": {
        "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 60},
            {"type": "Percent", "value": 10, "periodSeconds": 60},
        ]
    }
}
HPA_DOCS_DOWN_MIN = {"scaleDown": {**HPA_DOCS_DOWN["scaleDown"], "selectPolicy": "Min"}}
ONE_RPS = [metric("rps", average(100))]
TWO = [metric("a", value(100)), metric("b", value(100))]

runner = CliRunner()


def run(tmp_path: Path, doc: dict[str, Any], *args: str) -> tuple[int, str, str]:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = runner.invoke(
        app, ["evaluate", "--policy", str(path), "--now", "2026-03-01T12:00:00Z", *args]
    )
    return result.exit_code, result.stdout, result.stderr


# (id, manifest, current, metric args, desired, reasons that must appear; the first is the outcome)
CASES: list[tuple[str, dict[str, Any], int, list[str], int, list[str]]] = [
    # HPA docs, "scaling policies": 80 replicas, 10 %/60 s and 4 pods/60 s, selectPolicy Max
    # -> the policy allowing the most change wins: 10 % of 80 = 8 pods.
    (
        "docs-80-percent-wins",
        manifest(ONE_RPS, behavior=HPA_DOCS_DOWN),
        80,
        ["rps=1000"],
        72,
        ["ScaleDown", "ScaleDownLimit"],
    ),
    # next iteration from 72: 7.2 pods is rounded up to 8 removed (Percent down truncates 64.8)
    (
        "docs-72-percent-rounds-up",
        manifest(ONE_RPS, behavior=HPA_DOCS_DOWN),
        72,
        ["rps=1000"],
        64,
        ["ScaleDown", "ScaleDownLimit"],
    ),
    # below 40 replicas the Pods policy allows more change
    (
        "docs-30-pods-wins",
        manifest(ONE_RPS, behavior=HPA_DOCS_DOWN),
        30,
        ["rps=1000"],
        26,
        ["ScaleDown", "ScaleDownLimit"],
    ),
    (
        "docs-80-select-min",
        manifest(ONE_RPS, behavior=HPA_DOCS_DOWN_MIN),
        80,
        ["rps=1000"],
        76,
        ["ScaleDown", "ScaleDownLimit"],
    ),
    # HPA docs, algorithm: current 200m, desired 100m -> replicas doubled
    (
        "cpu-200m-target-100m",
        manifest([metric("cpu", value("100m"))]),
        1,
        ["cpu=200m"],
        2,
        ["ScaleUp", "DesiredWithinRange"],
    ),
    (
        "average-value-200m-per-pod",
        manifest([metric("cpu", average("100m"))]),
        1,
        ["cpu=0.2"],
        2,
        ["ScaleUp"],
    ),
    # CONTRACTS.md example: backlog 9000, 1000 per replica
    (
        "average-value-backlog",
        manifest([metric("backlog", average(1000))]),
        5,
        ["backlog=9000"],
        9,
        ["ScaleUp", "DesiredWithinRange"],
    ),
    # ... from 4 the default scale-up limit (max(100 %, 4 pods)) allows 8
    (
        "average-value-backlog-limited",
        manifest([metric("backlog", average(1000))]),
        4,
        ["backlog=9000"],
        8,
        ["ScaleUp", "ScaleUpLimit"],
    ),
    (
        "average-value-within-tolerance",
        manifest([metric("backlog", average(1000))]),
        4,
        ["backlog=4300"],
        4,
        ["NoChange", "WithinTolerance"],
    ),
    (
        "utilization-fraction",
        manifest([metric("cpu", utilization(60))]),
        4,
        ["cpu=0.9"],
        6,
        ["ScaleUp"],
    ),
    (
        "utilization-percent",
        manifest([metric("cpu", utilization(60))]),
        4,
        ["cpu=90%"],
        6,
        ["ScaleUp"],
    ),
    (
        "utilization-down",
        manifest([metric("cpu", utilization(80))]),
        10,
        ["cpu=20%"],
        3,
        ["ScaleDown", "DesiredWithinRange"],
    ),
    # tolerance 0.1: a ratio exactly on the boundary is within it
    (
        "tolerance-up-boundary",
        manifest([metric("q", value(100))]),
        10,
        ["q=110"],
        10,
        ["NoChange", "WithinTolerance"],
    ),
    ("tolerance-up-just-over", manifest([metric("q", value(100))]), 10, ["q=111"], 12, ["ScaleUp"]),
    (
        "tolerance-down-boundary",
        manifest([metric("q", value(100))]),
        10,
        ["q=90"],
        10,
        ["NoChange", "WithinTolerance"],
    ),
    (
        "tolerance-down-just-under",
        manifest([metric("q", value(100))]),
        10,
        ["q=89"],
        9,
        ["ScaleDown"],
    ),
    # per-direction tolerance (KEP-4951)
    (
        "tolerance-per-direction",
        manifest(
            [metric("q", value(100))],
            behavior={"scaleUp": {"tolerance": 0.0}, "scaleDown": {"tolerance": 0.5}},
        ),
        10,
        ["q=101"],
        11,
        ["ScaleUp"],
    ),
    (
        "tolerance-per-direction-down-held",
        manifest([metric("q", value(100))], behavior={"scaleDown": {"tolerance": 0.5}}),
        10,
        ["q=51"],
        10,
        ["NoChange", "WithinTolerance"],
    ),
    # exact integer math: Go's float ceil(10 x 1.1) is 12; gemini says 11
    (
        "exact-integer-ceil",
        manifest([metric("q", value(100))], behavior={"scaleUp": {"tolerance": 0.0}}),
        10,
        ["q=110"],
        11,
        ["ScaleUp"],
    ),
    # default scale-up limit: max(100 %, 4 pods) per 15 s
    (
        "default-up-limit-from-1",
        manifest([metric("q", value(1))]),
        1,
        ["q=50"],
        5,
        ["ScaleUp", "ScaleUpLimit"],
    ),
    (
        "default-up-limit-from-3",
        manifest([metric("q", value(1))]),
        3,
        ["q=50"],
        7,
        ["ScaleUp", "ScaleUpLimit"],
    ),
    (
        "default-up-limit-from-10",
        manifest([metric("q", value(1))]),
        10,
        ["q=50"],
        20,
        ["ScaleUp", "ScaleUpLimit"],
    ),
    (
        "up-limit-then-max",
        manifest([metric("q", value(1))], max_replicas=12),
        10,
        ["q=50"],
        12,
        ["ScaleUp", "TooManyReplicas"],
    ),
    (
        "up-disabled",
        manifest([metric("q", value(1))], behavior={"scaleUp": {"selectPolicy": "Disabled"}}),
        3,
        ["q=50"],
        3,
        ["NoChange", "ScaleUpDisabled"],
    ),
    # first tick: no history, so the 300 s down window holds nothing; 100 %/15 s allows it all
    (
        "down-first-tick",
        manifest([metric("q", value(100))]),
        10,
        ["q=20"],
        2,
        ["ScaleDown", "DesiredWithinRange"],
    ),
    (
        "down-to-min",
        manifest([metric("q", value(100))], min_replicas=3),
        10,
        ["q=20"],
        3,
        ["ScaleDown", "TooFewReplicas"],
    ),
    (
        "down-disabled",
        manifest([metric("q", value(100))], behavior={"scaleDown": {"selectPolicy": "Disabled"}}),
        10,
        ["q=20"],
        10,
        ["NoChange", "ScaleDownDisabled"],
    ),
    # max over metrics
    ("max-over-metrics", manifest(TWO), 4, ["a=125", "b=200"], 8, ["ScaleUp"]),
    ("max-over-metrics-one-down", manifest(TWO), 4, ["a=50", "b=150"], 6, ["ScaleUp"]),
    # missing metrics: scale-up allowed, scale-down held, all missing -> no change
    (
        "missing-holds-down",
        manifest(TWO),
        4,
        ["a=50"],
        4,
        ["NoChange", "MetricMissing", "ScaleDownHeldInvalidMetric"],
    ),
    ("missing-allows-up", manifest(TWO), 4, ["a=200"], 8, ["ScaleUp", "MetricMissing"]),
    ("missing-all", manifest(TWO), 4, [], 4, ["NoChange", "MetricMissing", "NoValidMetrics"]),
    # current outside [min, max] goes straight to the bound, no rate limit
    (
        "above-max",
        manifest([metric("q", value(100))], max_replicas=5),
        40,
        ["q=100"],
        5,
        ["ScaleDown", "CurrentAboveMax"],
    ),
    (
        "below-min",
        manifest([metric("q", value(100))], min_replicas=20),
        2,
        ["q=100"],
        20,
        ["ScaleUp", "CurrentBelowMin"],
    ),
    # replicas 0 with minReplicas > 0: HPA's "scaling disabled"
    (
        "zero-with-min-1",
        manifest([metric("q", value(100))]),
        0,
        ["q=500"],
        0,
        ["NoChange", "ScalingDisabled"],
    ),
    # from zero (minReplicas 0): Value target proposes ceil(ratio), activation
    (
        "value-from-zero",
        manifest([metric("q", value(100))], min_replicas=0),
        0,
        ["q=350"],
        4,
        ["ScaleUp", "Activated"],
    ),
    (
        "value-from-zero-tiny",
        manifest([metric("q", value(100))], min_replicas=0),
        0,
        ["q=1"],
        1,
        ["ScaleUp", "Activated"],
    ),
    (
        "value-from-zero-inactive",
        manifest([metric("q", value(100))], min_replicas=0),
        0,
        ["q=0"],
        0,
        ["NoChange", "Inactive"],
    ),
    (
        "percent-only-from-zero",
        manifest(
            [metric("q", value(100))],
            min_replicas=0,
            behavior={
                "scaleUp": {"policies": [{"type": "Percent", "value": 100, "periodSeconds": 60}]}
            },
        ),
        0,
        ["q=350"],
        1,
        ["ScaleUp", "Activated"],
    ),
    # modes
    (
        "paused",
        manifest([metric("q", value(100))], mode="Paused"),
        4,
        ["q=300"],
        4,
        ["NoChange", "Paused"],
    ),
    (
        "shadow",
        manifest([metric("q", value(100))], mode="Shadow"),
        4,
        ["q=300"],
        8,
        ["ScaleUp", "ShadowMode"],
    ),
]


@pytest.mark.parametrize(
    ("doc", "current", "args", "desired", "reasons"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES],
)
def test_evaluate_conformance(
    tmp_path: Path,
    doc: dict[str, Any],
    current: int,
    args: list[str],
    desired: int,
    reasons: list[str],
) -> None:
    flags = [x for a in args for x in ("--metric", a)]
    code, out, err = run(tmp_path, doc, "--current", str(current), *flags, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["currentReplicas"] == current
    assert result["desiredReplicas"] == desired, result["reasons"]
    assert result["applied"] is False
    assert result["reasons"][0] == reasons[0]
    assert set(reasons) <= set(result["reasons"]), result["reasons"]
    names = [m["name"] for m in doc["spec"]["metrics"]]
    assert [m["name"] for m in result["metrics"]] == names
    for m in result["metrics"]:
        assert {"name", "value", "target", "targetType", "proposedReplicas", "status"} <= set(m)
        assert m["status"] in {"ok", "missing", "stale", "error"}


def test_metric_fields_in_json(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, manifest(TWO), "--current", "4", "--metric", "a=150", "--json")
    assert code == 0, err
    a, b = json.loads(out)["metrics"]
    assert a == {
        **a,
        "name": "a",
        "value": 150.0,
        "target": 100.0,
        "targetType": "Value",
        "proposedReplicas": 6,
        "status": "ok",
        "offsetSeconds": 0,
    }
    assert b == {**b, "name": "b", "value": None, "proposedReplicas": None, "status": "missing"}


def test_quantity_target_and_utilization_json(tmp_path: Path) -> None:
    code, out, _ = run(
        tmp_path,
        manifest([metric("cpu", utilization(80))]),
        "--current",
        "2",
        "--metric",
        "cpu=120%",
        "--json",
    )
    assert code == 0
    m = json.loads(out)["metrics"][0]
    assert (m["value"], m["target"], m["targetType"]) == (1.2, 0.8, "Utilization")


def test_text_output(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, manifest(ONE_RPS), "--current", "2", "--metric", "rps=1000")
    assert code == 0
    assert "shop/web: 2 -> 6" in out  # default up limit from 2: max(4, 6)
    assert "ScaleUpLimit" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--metric", "nope=1"],
            "--metric nope: the policy has no such metric",
            id="unknown-metric",
        ),
        pytest.param(["--metric", "rps"], "expected NAME=VALUE", id="no-equals"),
        pytest.param(["--metric", "rps=lots"], "--metric rps:", id="bad-value"),
        pytest.param(["--now", "yesterday"], "--now 'yesterday'", id="bad-now"),
        pytest.param(
            ["--metric", "rps=5", "--now", "0001-01-01T00:00:00Z"],
            "--now '0001-01-01T00:00:00Z': out of range",
            id="now-in-year-1",
        ),
        # found by an adversarial run: the last value won, and an empty --now meant "now"
        pytest.param(
            ["--metric", "rps=900", "--metric", "rps=100"],
            "--metric rps: given twice (one value per metric)",
            id="metric-twice",
        ),
        pytest.param(["--metric", "rps=5", "--now", ""], "--now '': not an ISO", id="empty-now"),
    ],
)
def test_bad_input_names_the_flag(tmp_path: Path, args: list[str], message: str) -> None:
    code, out, err = run(tmp_path, manifest(ONE_RPS), "--current", "2", *args)
    assert code == 1
    assert message in err
    assert out == ""


def test_invalid_policy_file(tmp_path: Path) -> None:
    doc = manifest(ONE_RPS, min_replicas=5, max_replicas=2)
    code, _, err = run(tmp_path, doc, "--current", "2")
    assert code == 1
    assert "spec.minReplicas" in err


def test_negative_current_is_usage_error(tmp_path: Path) -> None:
    code, _, _ = run(tmp_path, manifest(ONE_RPS), "--current", "-1")
    assert code == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(None, "cannot read file", id="no-file"),
        pytest.param("a: [\n", "invalid YAML", id="bad-yaml"),
        pytest.param("", "no ScalingPolicy document in file", id="empty"),
    ],
)
def test_unreadable_policy_file(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "policy.yaml"
    if text is not None:
        path.write_text(text)
    result = runner.invoke(app, ["evaluate", "--policy", str(path), "--current", "2"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{path}: ")
    assert ": : " not in result.stderr
    assert message in result.stderr


def test_current_beyond_int32_is_a_usage_error(tmp_path: Path) -> None:
    """Replica counts are int32 in Kubernetes: a larger --current is refused, not evaluated."""
    code, _, err = run(tmp_path, manifest(ONE_RPS), "--current", str(2**31), "--metric", "rps=1")
    assert code == 2 and "--current" in err


def test_a_file_of_several_policies_needs_a_name(tmp_path: Path) -> None:
    """It evaluated the first one without a word."""
    other = manifest(ONE_RPS)
    other["metadata"]["name"] = "api"
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump_all([manifest(ONE_RPS), other]))
    args = ["evaluate", "--policy", str(path), "--current", "2", "--metric", "rps=100"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "metadata.name: the file has 2 policies (web, api): choose one" in result.stderr
    assert runner.invoke(app, [*args, "--name", "api"]).exit_code == 0
