"""Status documents and HPA-like conditions, from hand-built tick results (pure, no server)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gemini.controller import status as st
from gemini.errors import SpecError
from gemini.loop import TickResult
from gemini.policy.decision import Decision, MetricResult, MetricStatus
from gemini.policy.state import PolicyState
from gemini.scalers import ApplyResult, ApplyStatus

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OK = MetricResult("load", MetricStatus.OK, 50.0, NOW, 3.0, 10.0, "AverageValue", 5)
STALE = MetricResult("queue", MetricStatus.STALE, 1.0, NOW, 900.0, 10.0, "AverageValue", None)
ERR = MetricResult("load", MetricStatus.ERROR, error="unavailable: boom")


def decision(
    current: int = 2,
    desired: int = 5,
    reasons: tuple[str, ...] = ("ScaleUp", "DesiredWithinRange"),
    metrics: tuple[MetricResult, ...] = (OK,),
    mode: str = "Active",
    applied: bool = True,
    outcome: str = "applied",
) -> Decision:
    return Decision(
        policy="ns/p",
        at=NOW,
        mode=mode,
        current=current,
        desired=desired,
        recommendation=desired,
        min_replicas=1,
        max_replicas=10,
        reasons=reasons,
        metrics=metrics,
        applied=applied,
        outcome=outcome,
        target="Deployment/web",
    )


def result(d: Decision | None, apply: ApplyResult | None = None, **kw: str) -> TickResult:
    return TickResult("ns/p", PolicyState(), d, apply, **kw)


def conds(r: TickResult) -> dict[str, tuple[bool, str]]:
    return {c.type: (c.status, c.reason) for c in st.decision_conditions(r)}


APPLIED = ApplyResult(ApplyStatus.APPLIED, 5, "Applied")


@pytest.mark.parametrize(
    ("res", "expected"),
    [
        pytest.param(
            result(decision(), APPLIED),
            {
                "Ready": (True, "Evaluated"),
                "AbleToScale": (True, "SucceededRescale"),
                "ScalingActive": (True, "ValidMetricFound"),
                "ScalingLimited": (False, "DesiredWithinRange"),
                "TargetConflict": (False, "NoConflict"),
                "SpecInvalid": (False, "SpecValid"),
            },
            id="scaled-up",
        ),
        pytest.param(
            result(None, error="TargetNotFound", error_message="deployments/web not found"),
            {"Ready": (False, "TargetNotFound"), "AbleToScale": (False, "FailedGetScale")},
            id="target-unreadable",
        ),
        pytest.param(
            result(
                decision(
                    desired=2,
                    reasons=("NoChange", "NoValidMetrics"),
                    metrics=(ERR,),
                    applied=False,
                    outcome="unchanged",
                )
            ),
            {
                "Ready": (False, "FailedGetMetrics"),
                "ScalingActive": (False, "FailedGetMetrics"),
                "AbleToScale": (True, "ReadyForNewScale"),
            },
            id="metrics-failed",
        ),
        pytest.param(
            result(decision(desired=10, reasons=("ScaleUp", "TooManyReplicas")), APPLIED),
            {"ScalingLimited": (True, "TooManyReplicas"), "Ready": (True, "Evaluated")},
            id="limited-by-max",
        ),
        pytest.param(
            result(
                decision(applied=False, outcome="refused"),
                ApplyResult(ApplyStatus.REFUSED, 2, "HpaOwnsTarget", "HPA web scales it"),
            ),
            {
                "TargetConflict": (True, "HpaOwnsTarget"),
                "AbleToScale": (False, "HpaOwnsTarget"),
                "Ready": (False, "HpaOwnsTarget"),
            },
            id="refused-hpa",
        ),
        pytest.param(
            result(
                decision(applied=False, outcome="failed"),
                ApplyResult(ApplyStatus.FAILED, 2, "ScaleFailed", "500"),
            ),
            {"AbleToScale": (False, "FailedUpdateScale"), "Ready": (False, "FailedUpdateScale")},
            id="apply-failed",
        ),
        pytest.param(
            result(
                decision(
                    desired=2,
                    reasons=("NoChange", "Paused"),
                    mode="Paused",
                    applied=False,
                    outcome="paused",
                )
            ),
            {"ScalingActive": (False, "Paused"), "Ready": (True, "Evaluated")},
            id="paused",
        ),
        pytest.param(
            result(decision(metrics=(OK, STALE)), APPLIED),
            {"ScalingActive": (True, "ValidMetricFound")},
            id="one-stale-metric",
        ),
        pytest.param(
            result(decision(reasons=("ScaleUp", "TargetBusy"), applied=False, outcome="busy")),
            {"AbleToScale": (False, "TargetBusy")},
            id="busy",
        ),
    ],
)
def test_conditions(res: TickResult, expected: dict[str, tuple[bool, str]]) -> None:
    got = conds(res)
    for ctype, want in expected.items():
        assert got[ctype] == want, ctype


def test_last_transition_time_changes_only_when_status_flips() -> None:
    first = st.merge_conditions(None, [st.Condition("Ready", True, "Evaluated", "a")], NOW)
    later = NOW + timedelta(minutes=5)
    same = st.merge_conditions(first, [st.Condition("Ready", True, "Evaluated", "b")], later)
    assert same[0]["lastTransitionTime"] == first[0]["lastTransitionTime"]
    assert same[0]["message"] == "b"
    flipped = st.merge_conditions(same, [st.Condition("Ready", False, "X", "c")], later)
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T12:05:00Z"


def test_conditions_not_given_are_kept() -> None:
    old = [{"type": "Custom", "status": "True", "reason": "R", "lastTransitionTime": "t"}]
    out = st.merge_conditions(old, [st.Condition("Ready", True, "Evaluated")], NOW)
    assert [c["type"] for c in out] == ["Ready", "Custom"]


def test_tick_status_carries_decision_summary_state_and_generation() -> None:
    state = PolicyState().with_scale_event(NOW, 2, 5)
    r = TickResult("ns/p", state, decision(), APPLIED)
    out = st.tick_status({}, 3, r, NOW, target="Deployment/web")
    assert out["observedGeneration"] == 3
    assert out["currentReplicas"] == 5 and out["desiredReplicas"] == 5
    assert out["lastScaleTime"] == "2026-01-01T12:00:00Z"
    assert out["target"] == "Deployment/web"
    summary = out["lastDecision"]
    assert summary["reasons"] == ["ScaleUp", "DesiredWithinRange"]
    assert summary["metrics"][0] == {
        "name": "load",
        "value": 50.0,
        "ageSeconds": 3.0,
        "target": 10.0,
        "proposedReplicas": 5,
        "status": "ok",
    }
    assert PolicyState.from_status(out["state"]) == state


def test_a_forecast_metric_in_the_status_says_how_far_back_it_was_read() -> None:
    """Its age is the moved sample's (fresh-looking); `offsetSeconds` says the value is a day
    old. A metric read in the present has no such key (as before)."""
    forecast = replace(OK, name="forecast", offset_seconds=82800)
    r = TickResult("ns/p", PolicyState(), decision(metrics=(OK, forecast)), APPLIED)
    now_row, past_row = st.tick_status({}, 1, r, NOW)["lastDecision"]["metrics"]
    assert "offsetSeconds" not in now_row
    assert past_row["offsetSeconds"] == 82800 and past_row["ageSeconds"] == 3.0


def test_invalid_status_names_every_field() -> None:
    err = SpecError(
        "bad",
        [
            ("spec.minReplicas", "minReplicas 9 exceeds maxReplicas 3"),
            ("spec.metrics[0].name", "required field is missing"),
        ],
    )
    out = st.invalid_status({}, 4, err, NOW)
    spec_invalid = next(c for c in out["conditions"] if c["type"] == "SpecInvalid")
    assert spec_invalid["status"] == "True"
    assert "spec.minReplicas: minReplicas 9 exceeds maxReplicas 3" in spec_invalid["message"]
    assert "spec.metrics[0].name" in spec_invalid["message"]
    assert out["observedGeneration"] == 4
