"""Builders of realistic `Decision`s for store and dashboard tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gemini.policy.decision import Decision, MetricResult, MetricStatus, Step

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def decision(
    policy: str = "shop/web",
    at: datetime | float = 0.0,
    *,
    current: int = 4,
    desired: int = 6,
    applied: bool = True,
    mode: str = "Active",
    target: str = "apps/v1/Deployment/web",
    status: MetricStatus = MetricStatus.OK,
    reasons: tuple[str, ...] = ("ScaleUp",),
    value: float = 150.0,
    offset: int = 0,
) -> Decision:
    when = at if isinstance(at, datetime) else T0 + timedelta(seconds=at)
    return Decision(
        policy=policy,
        at=when,
        mode=mode,
        current=current,
        desired=desired,
        recommendation=desired,
        min_replicas=2,
        max_replicas=20,
        reasons=reasons,
        metrics=(
            MetricResult(
                name="rps",
                status=status,
                value=value if status is MetricStatus.OK else None,
                sample_at=when - timedelta(seconds=30),
                age_seconds=30.0,
                target=100.0,
                target_type="AverageValue",
                proposed=desired,
                reason=None if status is MetricStatus.OK else "MetricMissing",
                offset_seconds=offset,
            ),
        ),
        steps=(Step("metrics", desired, "ScaleUp"), Step("bounds", desired, "DesiredWithinRange")),
        applied=applied,
        outcome="Scaled" if applied else None,
        target=target,
        extra={"note": "x"},
    )
