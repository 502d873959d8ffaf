"""Acceptance: `gemini evaluate --json` against an independent reading of the HPA v2 algorithm.

`hpa_first_tick` below is written from the Kubernetes documentation and horizontal.go /
replica_calculator.go, in exact rational arithmetic, without looking at gemini's engine:

- per metric: Value/Utilization ratio = value / target, AverageValue ratio = value /
  (target x current); within [1 - tolerance, 1 + tolerance] -> current; else Value/Utilization
  ceil(ratio x current), AverageValue ceil(value / target);
- the highest proposal wins; a missing metric forbids scaling down; none valid -> no change;
- current above max / below min goes straight to the bound; current 0 with min > 0: disabled;
- first tick: the stabilization windows hold only this recommendation;
- rate: up Pods start + v, Percent ceil(start x (1 + v/100)); down Pods start - v, Percent
  floor(start x (1 - v/100)); selectPolicy Max the most change, Min the least, Disabled none;
  defaults up max(100 %, 4 pods), down 100 %; then min/max. A clip by a rate policy is
  ScaleUpLimit / ScaleDownLimit, by the bound TooManyReplicas / TooFewReplicas.

Cases are a hand table (named) plus seeded random cases; every case runs the real CLI.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gemini.cli import app

PROM = {"prometheus": {"serverAddress": "http://prometheus:9090", "query": "sum(x)"}}
TYPES = ("Value", "AverageValue", "Utilization")
FIELD = {"Value": "value", "AverageValue": "averageValue", "Utilization": "averageUtilization"}
LIMITS = {"ScaleUpLimit", "ScaleDownLimit", "TooManyReplicas", "TooFewReplicas"}


@dataclass(frozen=True)
class M:
    """One metric: its target type and target, and the value passed (None: left out)."""

    type: str
    target: str  # as written in the manifest (Utilization: a percent)
    value: str | None


@dataclass(frozen=True)
class Case:
    id: str
    metrics: tuple[M, ...]
    current: int
    min: int = 1
    max: int = 100
    up: dict[str, Any] | None = None
    down: dict[str, Any] | None = None
    expect: int | None = None  # a hand-worked answer, checked against the reference too
    extra: dict[str, Any] = field(default_factory=dict)


# -- the independent reference --------------------------------------------------------------


def _ceil(x: Fraction) -> int:
    return math.ceil(x)


def _num(text: str) -> Fraction:
    """A number or a quantity with an m (milli) or k (kilo) suffix."""
    scale = {"m": Fraction(1, 1000), "k": Fraction(1000)}.get(text[-1:], Fraction(1))
    return Fraction(text[:-1] if scale != 1 else text) * scale


def _value(m: M) -> Fraction:
    """The --metric value as a number: "85%" is 0.85; for Utilization a bare number above 10
    is a percent too (gemini's documented reading of what HPA users type)."""
    assert m.value is not None
    if m.value.endswith("%"):
        return _num(m.value[:-1]) / 100
    value = _num(m.value)
    return value / 100 if m.type == "Utilization" and value > 10 else value


def _proposal(m: M, current: int, tol_up: Fraction, tol_down: Fraction) -> int | None:
    if m.value is None:
        return None
    value = _value(m)
    target = _num(m.target) / (100 if m.type == "Utilization" else 1)
    if m.type == "AverageValue":
        ratio = value / (target * current)
        if 1 - tol_down <= ratio <= 1 + tol_up:
            return current
        return _ceil(value / target)
    ratio = value / target
    if 1 - tol_down <= ratio <= 1 + tol_up:
        return current
    return _ceil(ratio * current)


def _rules(given: dict[str, Any] | None, up: bool) -> tuple[str, list[tuple[str, int]], Fraction]:
    default = [("Percent", 100), ("Pods", 4)] if up else [("Percent", 100)]
    given = given or {}
    policies = [(p["type"], p["value"]) for p in given.get("policies") or []] or default
    return (
        given.get("selectPolicy", "Max"),
        policies,
        _num(str(given.get("tolerance", "0.1"))),
    )


def hpa_first_tick(case: Case) -> tuple[int, set[str]]:
    """(desired replicas, the limit reasons expected) on the policy's first tick."""
    cur = case.current
    up_select, up_policies, tol_up = _rules(case.up, True)
    down_select, down_policies, tol_down = _rules(case.down, False)
    if cur == 0 and case.min > 0:
        return 0, set()
    if cur > case.max:
        return case.max, {"TooManyReplicas"}
    if cur < case.min:
        return case.min, {"TooFewReplicas"}
    proposals = [_proposal(m, cur, tol_up, tol_down) for m in case.metrics]
    valid = [p for p in proposals if p is not None]
    if not valid:
        return cur, set()
    rec = max(valid)
    if len(valid) < len(proposals) and rec < cur:
        return cur, set()
    # first tick: stabilization has only `rec`, so it passes unchanged
    if rec > cur:
        if up_select == "Disabled":
            limit = cur
        else:
            each = [
                cur + v if kind == "Pods" else _ceil(Fraction(cur * (100 + v), 100))
                for kind, v in up_policies
            ]
            limit = max(each) if up_select == "Max" else min(each)
        if case.max > limit:
            allowed, why = limit, "ScaleUpLimit"
        else:
            allowed, why = case.max, "TooManyReplicas"
        return (allowed, {why}) if rec > allowed else (rec, set())
    if rec < cur:
        if down_select == "Disabled":
            limit = cur
        else:
            each = [
                cur - v if kind == "Pods" else math.floor(Fraction(cur * (100 - v), 100))
                for kind, v in down_policies
            ]
            limit = min(each) if down_select == "Max" else max(each)
        if case.min < limit:
            allowed, why = limit, "ScaleDownLimit"
        else:
            allowed, why = case.min, "TooFewReplicas"
        return (allowed, {why}) if rec < allowed else (rec, set())
    return cur, set()


# -- cases ---------------------------------------------------------------------------------


def one(type_: str, target: str, value: str | None) -> tuple[M, ...]:
    return (M(type_, target, value),)


def pods(v: int, period: int = 15) -> dict[str, Any]:
    return {"type": "Pods", "value": v, "periodSeconds": period}


def pct(v: int, period: int = 15) -> dict[str, Any]:
    return {"type": "Percent", "value": v, "periodSeconds": period}


HAND = [
    # CONTRACTS' example: backlog 9000 at 1000 per replica from 4 asks 9; the default scale-up
    # limit max(2 x 4, 4 + 4) = 8 clips it
    Case("contracts-backlog", one("AverageValue", "1000", "9000"), 4, expect=8),
    Case("avg-from-5-no-clip", one("AverageValue", "1000", "9000"), 5, expect=9),
    Case("value-double", one("Value", "100m", "200m"), 3, expect=6),
    Case("value-decimal-target", one("Value", "0.7", "0.91"), 10, expect=13),
    Case("util-percent-bare", one("Utilization", "60", "90"), 4, expect=6),
    Case("util-percent-sign", one("Utilization", "60", "90%"), 4, expect=6),
    Case("util-fraction", one("Utilization", "60", "0.9"), 4, expect=6),
    Case("util-down", one("Utilization", "80", "20"), 10, expect=3),
    Case("tol-up-on-boundary", one("Value", "100", "110"), 10, expect=10),
    Case("tol-up-just-over", one("Value", "100", "110.5"), 10, expect=12),
    Case("tol-down-on-boundary", one("Value", "100", "90"), 10, expect=10),
    Case("tol-down-just-under", one("Value", "100", "89.9"), 10, expect=9),
    Case("tol-avg-within", one("AverageValue", "100", "1050"), 10, expect=10),
    Case("tol-explicit-0.05", one("Value", "100", "108"), 10, up={"tolerance": 0.05}, expect=11),
    Case("tol-quantity", one("Value", "100", "108"), 10, up={"tolerance": "50m"}, expect=11),
    Case("default-up-from-1", one("Value", "1", "50"), 1, expect=5),
    Case("default-up-from-2", one("Value", "1", "50"), 2, expect=6),
    Case("default-up-from-4", one("Value", "1", "50"), 4, expect=8),
    Case("default-up-from-10", one("Value", "1", "50"), 10, max=1000, expect=20),
    Case("default-down-straight", one("AverageValue", "100", "100"), 40, expect=1),
    Case("max-clamp", one("AverageValue", "10", "1000"), 8, max=12, expect=12),
    Case("min-clamp", one("AverageValue", "10", "5"), 8, min=3, expect=3),
    Case("current-above-max", one("Value", "1", "1"), 30, max=20, expect=20),
    Case("current-below-min", one("Value", "1", "1"), 1, min=3, expect=3),
    Case("zero-disabled", one("Value", "1", "5"), 0, min=1, expect=0),
    Case("missing-only", one("Value", "1", None), 5, expect=5),
    Case(
        "missing-holds-down",
        (M("Value", "100", "10"), M("Value", "100", None)),
        6,
        expect=6,
    ),
    Case(
        "missing-allows-up",
        (M("Value", "100", "300"), M("Value", "100", None)),
        2,
        expect=6,
    ),
    Case(
        "multi-highest-wins",
        (M("AverageValue", "100", "350"), M("Value", "50", "100"), M("Utilization", "70", "35")),
        3,
        expect=6,
    ),
    Case(
        "docs-down-percent-wins",
        one("AverageValue", "100", "1000"),
        80,
        down={"policies": [pods(4, 60), pct(10, 60)]},
        expect=72,
    ),
    Case(
        "docs-down-select-min",
        one("AverageValue", "100", "1000"),
        80,
        down={"policies": [pods(4, 60), pct(10, 60)], "selectPolicy": "Min"},
        expect=76,
    ),
    Case(
        "up-pods-only",
        one("Value", "1", "10"),
        3,
        up={"policies": [pods(2)]},
        expect=5,
    ),
    Case(
        "up-percent-rounds-up",
        one("Value", "1", "10"),
        3,
        up={"policies": [pct(50)]},
        expect=5,
    ),
    Case(
        "up-select-min",
        one("Value", "1", "10"),
        10,
        up={"policies": [pct(50), pods(2)], "selectPolicy": "Min"},
        expect=12,
    ),
    Case("up-disabled", one("Value", "1", "10"), 3, up={"selectPolicy": "Disabled"}, expect=3),
    Case("down-disabled", one("Value", "1", "0.1"), 9, down={"selectPolicy": "Disabled"}, expect=9),
    Case(
        "down-percent-truncates",
        one("Value", "1", "0.1"),
        9,
        down={"policies": [pct(30)]},
        expect=6,
    ),
    # minReplicas 0 from a running workload: HPA's formula (scale to zero's cooldown, like the
    # other cooldowns, has nothing to hold on the first tick)
    Case("to-zero-idle", one("AverageValue", "10", "0"), 3, min=0, expect=0),
    Case("to-zero-some-load", one("AverageValue", "10", "5"), 3, min=0, expect=1),
    Case(
        "down-window-only-given",
        one("Value", "1", "0.5"),
        10,
        down={"stabilizationWindowSeconds": 600},
        expect=5,
    ),
]


def _random_cases(n: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    out: list[Case] = []
    for i in range(n):
        metrics = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            kind = rng.choice(TYPES)
            target = str(rng.choice((1, 5, 10, 50, 70, 100, 250)))
            value: str | None = str(rng.randint(0, 2000) / rng.choice((1, 10)))
            if kind == "Utilization":
                value = f"{rng.randint(1, 300)}%"
            if rng.random() < 0.12:
                value = None
            metrics.append(M(kind, target, value))
        # minReplicas 0 is gemini's scale to zero (KEDA's activation), not HPA's algorithm
        lo = rng.choice((1, 1, 2, 5))
        hi = lo + rng.choice((1, 3, 10, 40, 200))
        current = rng.randint(max(0, lo - 2), hi + 3)
        up = rng.choice(
            (
                None,
                {"policies": [pods(rng.randint(1, 6))]},
                {"policies": [pct(rng.choice((10, 50, 100, 200))), pods(rng.randint(1, 6))]},
                {
                    "policies": [pct(rng.choice((10, 50, 100))), pods(rng.randint(1, 6))],
                    "selectPolicy": "Min",
                },
                {"selectPolicy": "Disabled"},
                {"tolerance": rng.choice((0, 0.05, 0.2))},
            )
        )
        down = rng.choice(
            (
                None,
                {"policies": [pods(rng.randint(1, 6), 60)]},
                {"policies": [pct(rng.choice((10, 25, 50, 100))), pods(rng.randint(1, 6))]},
                {"policies": [pct(rng.choice((10, 50))), pods(2)], "selectPolicy": "Min"},
                {"selectPolicy": "Disabled"},
                {"tolerance": rng.choice((0, 0.05, 0.2))},
            )
        )
        out.append(Case(f"random-{seed}-{i}", tuple(metrics), current, lo, hi, up, down))
    return out


RANDOM = _random_cases(40, seed=20260301)
ALL = HAND + RANDOM


# -- running the real CLI ----------------------------------------------------------------


def manifest(case: Case) -> dict[str, Any]:
    metrics = []
    for i, m in enumerate(case.metrics):
        target: Any = int(m.target) if m.type == "Utilization" else m.target
        if m.type != "Utilization" and m.target.replace(".", "").isdigit():
            target = float(m.target) if "." in m.target else int(m.target)
        metrics.append(
            {"name": f"m{i}", "source": PROM, "target": {"type": m.type, FIELD[m.type]: target}}
        )
    behavior = {
        key: rules for key, rules in (("scaleUp", case.up), ("scaleDown", case.down)) if rules
    }
    spec: dict[str, Any] = {
        "target": {"kubernetes": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"}},
        "minReplicas": case.min,
        "maxReplicas": case.max,
        "metrics": metrics,
    }
    if behavior:
        spec["behavior"] = behavior
    return {
        "apiVersion": "autoscaling.gemini.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": "app"},
        "spec": spec,
    }


def evaluate(tmp_path: Path, case: Case) -> dict[str, Any]:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(manifest(case)))
    args = ["evaluate", "--policy", str(path), "--current", str(case.current), "--json"]
    for i, m in enumerate(case.metrics):
        if m.value is not None:
            args += ["--metric", f"m{i}={m.value}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_evaluate_matches_the_hpa_reference(tmp_path: Path, case: Case) -> None:
    desired, limits = hpa_first_tick(case)
    if case.expect is not None:
        assert desired == case.expect, "the reference disagrees with the hand-worked answer"
    out = evaluate(tmp_path, case)
    assert out["currentReplicas"] == case.current
    assert out["desiredReplicas"] == desired
    assert out["applied"] is False
    outcome = "ScaleUp" if desired > case.current else "ScaleDown"
    assert out["reasons"][0] == (outcome if desired != case.current else "NoChange")
    assert LIMITS & set(out["reasons"]) == limits


@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_evaluate_json_metric_shape(tmp_path: Path, case: Case) -> None:
    out = evaluate(tmp_path, case)
    assert [m["name"] for m in out["metrics"]] == [f"m{i}" for i in range(len(case.metrics))]
    for m, given in zip(out["metrics"], case.metrics, strict=True):
        assert {"name", "value", "target", "targetType", "proposedReplicas", "status"} <= set(m)
        assert m["status"] in {"ok", "missing", "stale", "error"}
        assert m["targetType"] == given.type
        scale = 100 if given.type == "Utilization" else 1
        assert m["target"] == pytest.approx(float(_num(given.target) / scale))
        if given.value is None:
            assert (m["status"], m["value"], m["proposedReplicas"]) == ("missing", None, None)
        else:
            assert m["status"] == "ok"
            assert m["value"] == pytest.approx(float(_value(given)))
            assert isinstance(m["proposedReplicas"], int)
            if case.current > 0:
                tol = hpa_tolerances(case)
                assert m["proposedReplicas"] == _proposal(given, case.current, *tol)


def hpa_tolerances(case: Case) -> tuple[Fraction, Fraction]:
    return _rules(case.up, True)[2], _rules(case.down, False)[2]


def test_random_cases_cover_every_branch() -> None:
    """The generated cases reach each outcome and each kind of clip (a table that cannot fail
    for lack of coverage would prove little)."""
    seen: set[str] = set()
    for case in RANDOM:
        desired, limits = hpa_first_tick(case)
        seen |= limits
        seen.add("up" if desired > case.current else "down" if desired < case.current else "same")
    assert {"up", "down", "same"} | LIMITS <= seen


@pytest.mark.parametrize(
    ("current", "value", "desired", "reason"),
    [
        (0, "0", 0, "Inactive"),
        (0, "15", 2, "Activated"),
        (0, "0.5", 1, "Activated"),
        (3, "0", 0, "ScaleToZero"),
    ],
    ids=["zero-stays-inactive", "zero-activates", "zero-activates-one", "idle-goes-to-zero"],
)
def test_scale_to_zero_on_the_first_tick(
    tmp_path: Path, current: int, value: str, desired: int, reason: str
) -> None:
    """KEDA's activation from zero (not HPA's algorithm); to zero needs no idle history."""
    case = Case("zero", one("AverageValue", "10", value), current, min=0)
    out = evaluate(tmp_path, case)
    assert out["desiredReplicas"] == desired
    assert reason in out["reasons"]


def test_a_deployment_beside_the_policy_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"}}
    case = Case("stack", one("AverageValue", "1000", "9000"), 5)
    path.write_text(yaml.safe_dump_all([deployment, manifest(case)]))
    args = ["evaluate", "--policy", str(path), "--current", "5", "--metric", "m0=9000", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["desiredReplicas"] == 9


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--metric", "m0"], "--metric 'm0': expected NAME=VALUE"),
        (["--metric", "nope=1"], "--metric nope: the policy has no such metric"),
        (["--metric", "m0=lots"], "--metric m0: not a number or quantity: 'lots'"),
        (["--metric", "m0=inf"], "--metric m0: not a number or quantity: 'inf'"),
        (["--metric", "m0=x%"], "--metric m0: not a percentage: 'x%'"),
        (["--now", "soon"], "--now 'soon': not an ISO-8601 time"),
    ],
    ids=["no-equals", "unknown-metric", "not-a-number", "infinite", "bad-percent", "bad-now"],
)
def test_bad_arguments_are_one_clear_line(tmp_path: Path, args: list[str], needle: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(manifest(Case("x", one("Value", "1", "1"), 1))))
    result = CliRunner().invoke(app, ["evaluate", "--policy", str(path), "--current", "2", *args])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == [result.stderr.splitlines()[0]]
    assert result.stderr.startswith(needle)


def test_invalid_policy_is_reported_by_field(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    doc = manifest(Case("x", one("Value", "1", "1"), 1, min=5, max=3))
    path.write_text(yaml.safe_dump(doc))
    result = CliRunner().invoke(app, ["evaluate", "--policy", str(path), "--current", "2"])
    assert result.exit_code == 1
    assert result.stderr == f"{path}: app: spec.minReplicas: minReplicas 5 exceeds maxReplicas 3\n"
