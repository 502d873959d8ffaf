"""Table tests for every step of `decide()` that needs history in `PolicyState`.

Each case names the step, builds a spec, a state (recommendations, scale events, failure counts,
last activity) and observations at a fixed `now`, and checks the desired count and the stable
reason code that explains each clip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gemini.policy.decision import Capacity, Decision, MetricStatus
from gemini.policy.engine import decide
from gemini.policy.spec import Spec, parse_policy
from gemini.policy.state import PolicyState, Recommendation, ScaleEvent
from gemini.series import Observation, Sample

T0 = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)  # a Monday
PROM = {"prometheus": {"serverAddress": "http://prom:9090", "query": "up"}}


def metric(name: str = "q", target: float = 100.0, **extra: Any) -> dict[str, Any]:
    return {"name": name, "source": PROM, "target": {"type": "Value", "value": target}, **extra}


def make_spec(
    metrics: list[dict[str, Any]] | None = None,
    *,
    min_replicas: int = 1,
    max_replicas: int = 100,
    up: dict[str, Any] | None = None,
    down: dict[str, Any] | None = None,
    bigtable: dict[str, Any] | None = None,
    **spec: Any,
) -> Spec:
    target: dict[str, Any] = {"kubernetes": {"name": "web"}}
    if bigtable is not None:
        target = {"bigtable": {"project": "p", "instance": "i", "cluster": "c", **bigtable}}
    body: dict[str, Any] = {
        "target": target,
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "metrics": metrics or [metric()],
        **spec,
    }
    behavior = {k: v for k, v in (("scaleUp", up), ("scaleDown", down)) if v is not None}
    if behavior:
        body["behavior"] = behavior
    doc = {
        "apiVersion": "autoscaling.gemini.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": "p"},
        "spec": body,
    }
    return parse_policy(doc).spec


def ago(seconds: float, now: datetime = T0) -> datetime:
    return now - timedelta(seconds=seconds)


def history(
    recs: tuple[tuple[float, int], ...] = (),
    events: tuple[tuple[float, int], ...] = (),
    failures: tuple[tuple[str, int], ...] = (),
    active_ago: float | None = None,
    now: datetime = T0,
) -> PolicyState:
    """A state with recommendations / events given as (seconds ago, value), oldest first."""
    return PolicyState(
        recommendations=tuple(Recommendation(ago(s, now), n) for s, n in recs),
        scale_events=tuple(ScaleEvent(ago(s, now), c) for s, c in events),
        failures=failures,
        last_active_at=None if active_ago is None else ago(active_ago, now),
    )


Obs = float | Observation | None


def observe(values: dict[str, Obs], now: datetime) -> list[Observation]:
    out: list[Observation] = []
    for name, v in values.items():
        if v is None:
            continue
        out.append(v if isinstance(v, Observation) else Observation.of(name, now, v))
    return out


@dataclass
class Case:
    id: str
    spec: Spec
    current: int
    values: dict[str, Obs]
    desired: int
    reason: str | None = None  # must appear in the decision's reasons (and in a step, if clipped)
    state: PolicyState = field(default_factory=PolicyState)
    now: datetime = T0
    capacity: dict[str, Any] = field(default_factory=dict)
    check: Callable[[Decision, PolicyState], None] | None = None


def run(case: Case) -> tuple[Decision, PolicyState]:
    cap = Capacity(current=case.current, **case.capacity)
    return decide(case.spec, case.state, observe(case.values, case.now), cap, case.now)


def samples(name: str, *points: tuple[float, float], now: datetime = T0) -> Observation:
    """An observation with samples given as (seconds ago, value), oldest first."""
    return Observation(name, tuple(Sample(ago(s, now), v) for s, v in points))


# -- helpers for the tables ---------------------------------------------------------------------

W60 = {"stabilizationWindowSeconds": 60}
W0 = {"stabilizationWindowSeconds": 0}
PODS2_60 = {"policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]}
PCT50_60 = {"policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}


def failures_are(expected: dict[str, int]) -> Callable[[Decision, PolicyState], None]:
    def check(_d: Decision, state: PolicyState) -> None:
        assert {k: state.failure_count(k) for k in expected} == expected

    return check


def status_is(name: str, status: MetricStatus) -> Callable[[Decision, PolicyState], None]:
    def check(d: Decision, _s: PolicyState) -> None:
        assert {m.name: m.status for m in d.metrics}[name] is status

    return check


def value_is(v: float) -> Callable[[Decision, PolicyState], None]:
    def check(d: Decision, _s: PolicyState) -> None:
        assert d.metrics[0].value == pytest.approx(v)

    return check


def recorded(n: int) -> Callable[[Decision, PolicyState], None]:
    def check(_d: Decision, state: PolicyState) -> None:
        assert state.recommendations[-1].replicas == n

    return check


STABILIZATION = [
    Case(
        "down-window-holds-highest",
        make_spec(),
        10,
        {"q": 50},
        10,
        "ScaleDownStabilized",
        history(recs=((100, 10),)),
    ),
    Case(
        "down-window-highest-of-several",
        make_spec(),
        10,
        {"q": 50},
        8,
        "ScaleDownStabilized",
        history(recs=((200, 8), (100, 7))),
    ),
    Case(
        "down-window-expired-at-boundary",
        make_spec(),
        10,
        {"q": 50},
        5,
        "DesiredWithinRange",
        history(recs=((300, 10),)),
    ),
    Case(
        "down-window-custom",
        make_spec(down=W60),
        10,
        {"q": 50},
        5,
        "DesiredWithinRange",
        history(recs=((61, 10),)),
    ),
    Case(
        "up-window-holds-lowest",
        make_spec(up=W60),
        4,
        {"q": 200},
        4,
        "ScaleUpStabilized",
        history(recs=((30, 4),)),
    ),
    Case(
        "up-window-partial",
        make_spec(up=W60),
        4,
        {"q": 200},
        6,
        "ScaleUpStabilized",
        history(recs=((30, 6),)),
    ),
    Case(
        "up-window-expired",
        make_spec(up=W60),
        4,
        {"q": 200},
        8,
        "DesiredWithinRange",
        history(recs=((60, 4),)),
    ),
    # the window records the recommendation before rate limits (24), not the clipped 8
    Case(
        "window-records-prenormalized",
        make_spec(up=PODS2_60),
        6,
        {"q": 400},
        8,
        "ScaleUpLimit",
        check=recorded(24),
    ),
]

RATE = [
    Case(
        "up-pods-event-in-period",
        make_spec(up=PODS2_60),
        6,
        {"q": 200},
        6,
        "ScaleUpLimit",
        history(events=((30, 2),)),
    ),
    Case(
        "up-pods-event-at-period-start",
        make_spec(up=PODS2_60),
        6,
        {"q": 200},
        8,
        "ScaleUpLimit",
        history(events=((60, 2),)),
    ),
    Case(
        "up-pods-partly-used",
        make_spec(up=PODS2_60),
        5,
        {"q": 200},
        6,
        "ScaleUpLimit",
        history(events=((30, 1),)),
    ),
    # net change: +4 then -2 inside the period -> period start is current - 2
    Case(
        "up-net-change",
        make_spec(up=PODS2_60),
        8,
        {"q": 200},
        8,
        "ScaleUpLimit",
        history(events=((50, 4), (20, -2))),
    ),
    Case(
        "up-percent-rounds-up",
        make_spec(up={"policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]}),
        3,
        {"q": 300},
        4,
        "ScaleUpLimit",
    ),
    Case(
        "up-select-min",
        make_spec(
            up={
                "selectPolicy": "Min",
                "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 60},
                    {"type": "Pods", "value": 2, "periodSeconds": 60},
                ],
            }
        ),
        6,
        {"q": 300},
        8,
        "ScaleUpLimit",
    ),
    Case(
        "up-select-max",
        make_spec(
            up={
                "selectPolicy": "Max",
                "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 60},
                    {"type": "Pods", "value": 2, "periodSeconds": 60},
                ],
            }
        ),
        6,
        {"q": 300},
        12,
        "ScaleUpLimit",
    ),
    Case(
        "up-two-periods-long-one-binds",
        make_spec(
            up={
                "selectPolicy": "Min",
                "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Pods", "value": 5, "periodSeconds": 300},
                ],
            }
        ),
        8,
        {"q": 300},
        8,
        "ScaleUpLimit",
        history(events=((200, 3), (100, 2))),
    ),
    Case(
        "down-percent-period",
        make_spec(down={**W0, **PCT50_60}),
        8,
        {"q": 10},
        8,
        "ScaleDownLimit",
        history(events=((30, -8),)),
    ),
    Case(
        "down-percent-after-period",
        make_spec(down={**W0, **PCT50_60}),
        8,
        {"q": 10},
        4,
        "ScaleDownLimit",
        history(events=((61, -8),)),
    ),
    Case(
        "down-percent-truncates",
        make_spec(down={**W0, **PCT50_60}),
        9,
        {"q": 10},
        4,
        "ScaleDownLimit",
    ),
    Case(
        "down-then-min",
        make_spec(min_replicas=6, down={**W0, **PCT50_60}),
        8,
        {"q": 10},
        6,
        "TooFewReplicas",
    ),
    Case(
        "up-then-max", make_spec(max_replicas=7, up=PODS2_60), 6, {"q": 300}, 7, "TooManyReplicas"
    ),
]

COOLDOWN = [
    Case(
        "up-cooldown",
        make_spec(up={"cooldownSeconds": 120}),
        4,
        {"q": 200},
        4,
        "ScaleUpCooldown",
        history(events=((60, 1),)),
    ),
    Case(
        "up-cooldown-expired",
        make_spec(up={"cooldownSeconds": 120}),
        4,
        {"q": 200},
        8,
        "DesiredWithinRange",
        history(events=((120, 1),)),
    ),
    Case(
        "up-cooldown-ignores-scale-down",
        make_spec(up={"cooldownSeconds": 120}),
        4,
        {"q": 200},
        8,
        "DesiredWithinRange",
        history(events=((60, -1),)),
    ),
    Case(
        "down-cooldown-after-scale-up",
        make_spec(down={**W0, "cooldownSeconds": 300}),
        8,
        {"q": 50},
        8,
        "ScaleDownCooldown",
        history(events=((60, 2),)),
    ),
    Case(
        "down-cooldown-after-scale-down",
        make_spec(down={**W0, "cooldownSeconds": 300}),
        8,
        {"q": 50},
        8,
        "ScaleDownCooldown",
        history(events=((299, -2),)),
    ),
    Case(
        "down-cooldown-expired",
        make_spec(down={**W0, "cooldownSeconds": 300}),
        8,
        {"q": 50},
        4,
        "DesiredWithinRange",
        history(events=((300, -2),)),
    ),
    Case(
        "down-cooldown-no-history",
        make_spec(down={**W0, "cooldownSeconds": 300}),
        8,
        {"q": 50},
        4,
        "DesiredWithinRange",
    ),
]

MON_0930_BERLIN = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)  # CET = UTC+1
BUSINESS = {
    "name": "business",
    "cron": "0 9 * * 1-5",
    "timeZone": "Europe/Berlin",
    "durationSeconds": 3600,
    "minReplicas": 10,
}
NIGHT_CAP = {
    "name": "night",
    "cron": "0 9 * * *",
    "timeZone": "Europe/Berlin",
    "durationSeconds": 3600,
    "maxReplicas": 3,
}
PEAK = {
    "name": "peak",
    "cron": "30 9 * * *",
    "timeZone": "Europe/Berlin",
    "durationSeconds": 600,
    "minReplicas": 15,
}
DAILY_9_BERLIN = {
    "name": "daily",
    "cron": "0 9 * * *",
    "timeZone": "Europe/Berlin",
    "durationSeconds": 3600,
    "minReplicas": 10,
}

# a schedule that lets the workload scale to zero at night (the policy's own minimum is 3)
NIGHT_ZERO = {
    "name": "night-zero",
    "cron": "0 0 * * *",
    "timeZone": "UTC",
    "durationSeconds": 6 * 3600,
    "minReplicas": 0,
}
AT_NIGHT, IN_THE_MORNING = datetime(2026, 3, 2, 2, tzinfo=UTC), datetime(2026, 3, 2, 9, tzinfo=UTC)

SCHEDULES = [
    # found by an adversarial run: zero replicas counted as "scaled to 0 by hand" (HPA's rule
    # for minReplicas > 0), so a workload a schedule took to zero stayed there, under any load
    Case(
        "zero-schedule-activates-from-zero",
        make_spec(min_replicas=3, schedules=[NIGHT_ZERO]),
        0,
        {"q": 400},
        4,
        "Activated",
        now=AT_NIGHT,
    ),
    Case(
        "zero-schedule-stays-at-zero-when-idle",
        make_spec(min_replicas=3, schedules=[NIGHT_ZERO]),
        0,
        {"q": 0},
        0,
        "Inactive",
        now=AT_NIGHT,
    ),
    Case(
        "zero-schedule-over-back-to-min",
        make_spec(min_replicas=3, schedules=[NIGHT_ZERO]),
        0,
        {"q": 0},
        3,
        "CurrentBelowMin",
        now=IN_THE_MORNING,
    ),
    Case(
        "schedule-raises-min",
        make_spec(schedules=[BUSINESS]),
        4,
        {"q": 100},
        10,
        "ScheduleActive",
        now=MON_0930_BERLIN,
    ),
    Case(
        "schedule-raises-min-current-below",
        make_spec(schedules=[BUSINESS]),
        4,
        {"q": 100},
        10,
        "CurrentBelowMin",
        now=MON_0930_BERLIN,
    ),
    Case(
        "schedule-starts-at-start",
        make_spec(schedules=[BUSINESS]),
        4,
        {"q": 100},
        10,
        "ScheduleActive",
        now=datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
    ),
    Case(
        "schedule-before-start",
        make_spec(schedules=[BUSINESS]),
        4,
        {"q": 100},
        4,
        "WithinTolerance",
        now=datetime(2026, 3, 2, 7, 59, 59, tzinfo=UTC),
    ),
    Case(
        "schedule-ends-after-duration",
        make_spec(schedules=[BUSINESS]),
        4,
        {"q": 100},
        4,
        "WithinTolerance",
        now=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    ),
    Case(
        "schedule-weekend-inactive",
        make_spec(schedules=[BUSINESS]),
        4,
        {"q": 100},
        4,
        "WithinTolerance",
        now=datetime(2026, 3, 1, 8, 30, tzinfo=UTC),
    ),
    Case(
        "schedule-lowers-max",
        make_spec(schedules=[NIGHT_CAP]),
        5,
        {"q": 100},
        3,
        "CurrentAboveMax",
        now=MON_0930_BERLIN,
    ),
    Case(
        "schedule-lowers-max-caps-up",
        make_spec(schedules=[NIGHT_CAP]),
        2,
        {"q": 400},
        3,
        "TooManyReplicas",
        now=MON_0930_BERLIN,
    ),
    Case(
        "schedules-highest-min-wins",
        make_spec(schedules=[BUSINESS, PEAK]),
        4,
        {"q": 100},
        15,
        "CurrentBelowMin",
        now=datetime(2026, 3, 2, 8, 35, tzinfo=UTC),
    ),
    Case(
        "schedules-one-active",
        make_spec(schedules=[BUSINESS, PEAK]),
        4,
        {"q": 100},
        10,
        "CurrentBelowMin",
        now=datetime(2026, 3, 2, 8, 45, tzinfo=UTC),
    ),
    # 09:00 Berlin is 08:00 UTC before the DST switch (2026-03-29) and 07:00 UTC after it
    Case(
        "dst-before-switch-inactive",
        make_spec(schedules=[DAILY_9_BERLIN]),
        4,
        {"q": 100},
        4,
        "WithinTolerance",
        now=datetime(2026, 3, 27, 7, 30, tzinfo=UTC),
    ),
    Case(
        "dst-before-switch-active",
        make_spec(schedules=[DAILY_9_BERLIN]),
        4,
        {"q": 100},
        10,
        "ScheduleActive",
        now=datetime(2026, 3, 27, 8, 30, tzinfo=UTC),
    ),
    Case(
        "dst-after-switch-active",
        make_spec(schedules=[DAILY_9_BERLIN]),
        4,
        {"q": 100},
        10,
        "ScheduleActive",
        now=datetime(2026, 3, 30, 7, 30, tzinfo=UTC),
    ),
    Case(
        "dst-after-switch-inactive",
        make_spec(schedules=[DAILY_9_BERLIN]),
        4,
        {"q": 100},
        4,
        "WithinTolerance",
        now=datetime(2026, 3, 30, 8, 30, tzinfo=UTC),
    ),
]

TWO = [metric("a"), metric("b")]
FB_REPLICAS = {"policy": "Replicas", "failureThreshold": 3, "replicas": 7}

FALLBACK = [
    Case(
        "hold-missing-holds-down",
        make_spec(TWO),
        6,
        {"a": 50, "b": None},
        6,
        "ScaleDownHeldInvalidMetric",
        check=failures_are({"a": 0, "b": 1}),
    ),
    Case(
        "hold-error-holds-down",
        make_spec(TWO),
        6,
        {"a": 50, "b": Observation.failed("b", "Unavailable", "connection refused")},
        6,
        "MetricError",
        check=status_is("b", MetricStatus.ERROR),
    ),
    Case("hold-allows-up", make_spec(TWO), 6, {"a": 150, "b": None}, 9, "MetricMissing"),
    Case(
        "hold-all-invalid",
        make_spec(TWO),
        6,
        {},
        6,
        "NoValidMetrics",
        check=failures_are({"a": 1, "b": 1}),
    ),
    Case(
        "ignore-allows-down",
        make_spec([metric("a"), metric("b", fallback={"policy": "Ignore"})]),
        6,
        {"a": 50, "b": None},
        3,
        "MetricIgnored",
    ),
    Case(
        "replicas-before-threshold",
        make_spec([metric("a", fallback=FB_REPLICAS)]),
        4,
        {},
        4,
        "NoValidMetrics",
        history(failures=(("a", 1),)),
        check=failures_are({"a": 2}),
    ),
    Case(
        "replicas-at-threshold",
        make_spec([metric("a", fallback=FB_REPLICAS)]),
        4,
        {},
        7,
        "FallbackActive",
        history(failures=(("a", 2),)),
        check=failures_are({"a": 3}),
    ),
    Case(
        "replicas-scales-down-too",
        make_spec([metric("a", fallback=FB_REPLICAS)], down=W0),
        12,
        {},
        7,
        "FallbackActive",
        history(failures=(("a", 5),)),
    ),
    Case(
        "replicas-with-other-metric-max",
        make_spec([metric("a", fallback=FB_REPLICAS), metric("b")]),
        6,
        {"b": 150},
        9,
        "FallbackActive",
        history(failures=(("a", 3),)),
    ),
    Case(
        "failure-counter-resets",
        make_spec([metric("a", fallback=FB_REPLICAS)]),
        4,
        {"a": 100},
        4,
        "WithinTolerance",
        history(failures=(("a", 5),)),
        check=failures_are({"a": 0}),
    ),
]

STALENESS = [
    Case(
        "stale-newest-sample",
        make_spec([metric("q", maxAgeSeconds=60)]),
        4,
        {"q": samples("q", (90, 400))},
        4,
        "MetricStale",
        check=status_is("q", MetricStatus.STALE),
    ),
    Case(
        "stale-holds-down",
        make_spec([metric("a"), metric("b", maxAgeSeconds=60)]),
        4,
        {"a": 10, "b": samples("b", (61, 10))},
        4,
        "ScaleDownHeldInvalidMetric",
    ),
    Case(
        "fresh-at-boundary",
        make_spec([metric("q", maxAgeSeconds=60)]),
        4,
        {"q": samples("q", (60, 200))},
        8,
        "ScaleUp",
        check=status_is("q", MetricStatus.OK),
    ),
    Case("no-samples-is-missing", make_spec(), 4, {"q": Observation("q")}, 4, "MetricMissing"),
    Case(
        "nan-is-error",
        make_spec(),
        4,
        {"q": float("nan")},
        4,
        "MetricError",
        check=status_is("q", MetricStatus.ERROR),
    ),
]

PTS = ((90, 1000.0), (50, 100.0), (10, 300.0))
FREE_UP = {"policies": [{"type": "Pods", "value": 100, "periodSeconds": 15}]}

WINDOWS = [
    Case(
        "window-last",
        make_spec([metric("q", windowSeconds=60)], up=FREE_UP),
        4,
        {"q": samples("q", *PTS)},
        12,
        check=value_is(300),
    ),
    Case(
        "window-mean",
        make_spec([metric("q", windowSeconds=60, windowFunction="Mean")], up=FREE_UP),
        4,
        {"q": samples("q", *PTS)},
        8,
        check=value_is(200),
    ),
    Case(
        "window-max",
        make_spec([metric("q", windowSeconds=60, windowFunction="Max")], up=FREE_UP),
        4,
        {"q": samples("q", *PTS)},
        12,
        check=value_is(300),
    ),
    Case(
        "window-min",
        make_spec([metric("q", windowSeconds=60, windowFunction="Min")], up=FREE_UP),
        4,
        {"q": samples("q", *PTS)},
        4,
        check=value_is(100),
    ),
    Case(
        "window-wide-mean",
        make_spec([metric("q", windowSeconds=120, windowFunction="Mean")], up=FREE_UP),
        4,
        {"q": samples("q", *PTS)},
        19,
        check=value_is(1400 / 3),
    ),
    Case(
        "window-empty-uses-newest",
        make_spec([metric("q", windowSeconds=5, windowFunction="Mean")], up=FREE_UP),
        4,
        {"q": samples("q", *PTS)},
        12,
        check=value_is(300),
    ),
    Case(
        "future-samples-ignored",
        make_spec([metric("q", windowSeconds=60, windowFunction="Max")], up=FREE_UP),
        4,
        {"q": samples("q", (50, 100.0), (10, 200.0), (-30, 9999.0))},
        8,
        check=value_is(200),
    ),
    Case(
        "only-future-samples-missing",
        make_spec(),
        4,
        {"q": samples("q", (-5, 9999.0))},
        4,
        "MetricMissing",
    ),
]

ZERO = make_spec(min_replicas=0)
ZERO_ACT = make_spec([metric("q", activationValue=10)], min_replicas=0)
ZERO_TWO = make_spec([metric("a", activationValue=500), metric("b")], min_replicas=0)

ACTIVATION = [
    Case(
        "scale-to-zero-after-cooldown", ZERO, 3, {"q": 0}, 0, "ScaleToZero", history(active_ago=300)
    ),
    Case(
        "scale-to-zero-cooldown",
        ZERO,
        3,
        {"q": 0},
        1,
        "ScaleToZeroCooldown",
        history(active_ago=299),
    ),
    Case("scale-to-zero-first-tick-waits", ZERO, 3, {"q": 0}, 1, "ScaleToZeroCooldown"),
    Case("activation-threshold-inactive", ZERO_ACT, 0, {"q": 5}, 0, "Inactive"),
    Case("activation-threshold-active", ZERO_ACT, 0, {"q": 50}, 1, "Activated"),
    Case(
        "inactive-but-above-target-stays-up",
        ZERO_ACT,
        2,
        {"q": 5},
        1,
        "ScaleToZeroCooldown",
        history(active_ago=10),
    ),
    Case(
        "no-scale-to-zero-on-partial-data",
        ZERO_TWO,
        2,
        {"a": 50},
        2,
        "ScaleDownHeldInvalidMetric",
        history(active_ago=3600),
    ),
    Case(
        "no-scale-to-zero-while-a-metric-fails",
        ZERO_TWO,
        2,
        {"a": 100, "b": None},
        2,
        "MetricMissing",
        history(active_ago=3600),
    ),
]

BT = {"maxScaleDownPercent": 10, "scaleDownPeriodSeconds": 600}
BT_SPEC = make_spec(bigtable=BT, down=W0)

BIGTABLE = [
    Case("bigtable-10-percent", BT_SPEC, 20, {"q": 10}, 18, "BigtableScaleDownLimit"),
    Case(
        "bigtable-period-used",
        BT_SPEC,
        18,
        {"q": 10},
        18,
        "BigtableScaleDownLimit",
        history(events=((300, -2),)),
    ),
    Case(
        "bigtable-period-over",
        BT_SPEC,
        18,
        {"q": 10},
        17,
        "BigtableScaleDownLimit",
        history(events=((600, -2),)),
    ),
    Case("bigtable-at-least-one-node", BT_SPEC, 3, {"q": 10}, 2, "BigtableScaleDownLimit"),
    Case("bigtable-up-unlimited", BT_SPEC, 3, {"q": 200}, 6, "DesiredWithinRange"),
    Case(
        "bigtable-never-below-one",
        make_spec(bigtable=BT, down=W0),
        2,
        {"q": 1},
        1,
        "DesiredWithinRange",
    ),
    Case(
        "bigtable-change-interval",
        make_spec(bigtable={"minChangeIntervalSeconds": 300}),
        4,
        {"q": 200},
        4,
        "MinChangeInterval",
        history(events=((100, -1),)),
    ),
    Case(
        "bigtable-change-interval-over",
        make_spec(bigtable={"minChangeIntervalSeconds": 300}),
        4,
        {"q": 200},
        8,
        "ScaleUp",
        history(events=((300, -1),)),
    ),
]

BT_NIGHT = {"name": "night", "cron": "0 22 * * *", "durationSeconds": 28800, "maxReplicas": 5}

BIGTABLE += [
    # a schedule lowering max does not drop 30 -> 5 nodes at once: 10 % per 10 minutes
    Case(
        "bigtable-lowered-max-still-guarded",
        make_spec(bigtable=BT, schedules=[BT_NIGHT]),
        30,
        {"q": 100},
        27,
        "BigtableScaleDownLimit",
        now=datetime(2026, 3, 2, 23, 0, tzinfo=UTC),
    ),
    Case(
        "kubernetes-lowered-max-immediate",
        make_spec(schedules=[BT_NIGHT]),
        30,
        {"q": 100},
        5,
        "CurrentAboveMax",
        now=datetime(2026, 3, 2, 23, 0, tzinfo=UTC),
    ),
]

SCALER = [
    Case(
        "scaler-floor",
        make_spec(down=W0),
        10,
        {"q": 10},
        6,
        "StorageFloor",
        capacity={"floor": 6, "floor_reason": "StorageFloor"},
    ),
    Case(
        "scaler-floor-default-reason",
        make_spec(down=W0),
        10,
        {"q": 10},
        6,
        "ScalerFloor",
        capacity={"floor": 6},
    ),
    Case("scaler-ceiling", make_spec(), 4, {"q": 300}, 5, "ScalerCeiling", capacity={"ceiling": 5}),
    Case("target-busy", make_spec(), 4, {"q": 200}, 8, "TargetBusy", capacity={"busy": True}),
    Case(
        "target-blocked",
        make_spec(),
        4,
        {"q": 200},
        8,
        "TargetConflict",
        capacity={"blocked": "TargetConflict"},
    ),
    Case(
        "busy-without-change-not-reported",
        make_spec(),
        4,
        {"q": 100},
        4,
        "WithinTolerance",
        capacity={"busy": True},
    ),
    Case(
        "scaler-conditions-copied",
        make_spec(),
        4,
        {"q": 100},
        4,
        "OperationFailed",
        capacity={"reasons": ("OperationFailed",)},
    ),
]

MODES = [
    Case("paused-holds", make_spec(mode="Paused"), 4, {"q": 400}, 4, "Paused"),
    Case(
        "paused-holds-bound", make_spec(mode="Paused", max_replicas=3), 4, {"q": 100}, 4, "Paused"
    ),
    Case("shadow-decides", make_spec(mode="Shadow"), 4, {"q": 400}, 8, "ShadowMode"),
    Case(
        "shadow-with-history",
        make_spec(mode="Shadow"),
        10,
        {"q": 10},
        10,
        "ShadowMode",
        history(recs=((60, 10),)),
    ),
]

EXTREMES = [
    Case("huge-value-capped", make_spec([metric("q", 0.001)]), 4, {"q": 1e308}, 8, "ScaleUpLimit"),
    Case("negative-value-asks-for-none", make_spec(down=W0), 4, {"q": -50}, 1, "TooFewReplicas"),
    Case("infinite-value-is-error", make_spec(), 4, {"q": float("inf")}, 4, "MetricError"),
]

ALL = (
    EXTREMES
    + STABILIZATION
    + RATE
    + COOLDOWN
    + SCHEDULES
    + FALLBACK
    + STALENESS
    + WINDOWS
    + ACTIVATION
)
ALL += BIGTABLE + SCALER + MODES

CLIP_STAGES = {"stabilization", "rate", "guardrail", "cooldown", "scaler", "bounds", "activation"}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in ALL])
def test_step(case: Case) -> None:
    decision, state = run(case)
    assert decision.desired == case.desired, decision.reasons
    expected_outcome = (
        "ScaleUp"
        if case.desired > case.current
        else "ScaleDown"
        if case.desired < case.current
        else "NoChange"
    )
    assert decision.reasons[0] == expected_outcome
    # what becomes of it, where `decide` can tell: nothing to apply (else the shell says)
    settled = {"Paused": "paused", "Shadow": "shadow"}.get(case.spec.mode.value)
    if settled is None and case.desired == case.current:
        settled = "unchanged"
    assert (decision.applied, decision.outcome) == (False, settled)
    if case.reason is not None:
        assert case.reason in decision.reasons, decision.reasons
    # every step that changed the value carries a reason code that is also in `reasons`
    for step in decision.steps:
        assert step.reason in decision.reasons
    assert len(set(decision.reasons)) == len(decision.reasons)
    if case.check is not None:
        case.check(decision, state)


def test_ids_unique() -> None:
    ids = [c.id for c in ALL]
    assert len(ids) == len(set(ids))


def test_every_clip_is_a_step() -> None:
    """A clip (stabilization, rate, guardrail, cooldown) shows as a step with its value."""
    case = next(c for c in RATE if c.id == "up-pods-partly-used")
    decision, _ = run(case)
    assert [(s.stage, s.value, s.reason) for s in decision.steps] == [("rate", 6, "ScaleUpLimit")]
    case = next(c for c in STABILIZATION if c.id == "down-window-highest-of-several")
    decision, _ = run(case)
    assert [(s.stage, s.value) for s in decision.steps] == [("stabilization", 8)]
    assert decision.recommendation == 5


def test_recommendation_recorded_and_pruned() -> None:
    spec = make_spec()
    state = history(recs=((400, 9), (299, 8)))
    _, new = decide(spec, state, observe({"q": 50}, T0), Capacity(current=10), T0)
    assert [(r.at, r.replicas) for r in new.recommendations] == [(ago(299), 8), (T0, 5)]
    assert new.last_evaluated_at == T0


def test_no_recommendation_when_held() -> None:
    """HPA records nothing when it cannot compute (all invalid / scale-down held)."""
    spec = make_spec(TWO)
    _, new = decide(spec, PolicyState(), observe({"a": 10}, T0), Capacity(current=6), T0)
    assert new.recommendations == ()


def test_events_pruned_to_longest_period() -> None:
    spec = make_spec(up=PODS2_60, down={"cooldownSeconds": 500})
    state = history(events=((600, 1), (499, 1), (10, -1)))
    _, new = decide(spec, state, observe({"q": 100}, T0), Capacity(current=4), T0)
    assert [e.at for e in new.scale_events] == [ago(499), ago(10)]


def test_observations_matched_by_position_when_unnamed() -> None:
    spec = make_spec(TWO)
    obs = [Observation.of("x", T0, 300), Observation.of("y", T0, 100)]
    decision, _ = decide(spec, PolicyState(), obs, Capacity(current=2), T0)
    assert [m.value for m in decision.metrics] == [300, 100]
    assert decision.desired == 6


def test_sequence_of_ticks_down_window() -> None:
    """Load drops: the 300 s window holds the high count, then releases it in one step."""
    spec = make_spec()
    state, current, now = PolicyState(), 10, T0
    seen = []
    for _ in range(25):
        d, state = decide(spec, state, observe({"q": 20}, now), Capacity(current=current), now)
        if d.desired != current:
            state = state.with_scale_event(now, current, d.desired)
            current = d.desired
        seen.append(current)
        now += timedelta(seconds=15)
    # the first tick records 2 but there is no history: straight to 2 (HPA's first sync)
    assert seen[0] == 2


def test_sequence_high_then_low_waits_for_window() -> None:
    spec = make_spec()
    state, current, now = PolicyState(), 10, T0
    d, state = decide(spec, state, observe({"q": 100}, now), Capacity(current=current), now)
    assert d.desired == 10
    changed_at = None
    for i in range(1, 30):
        now = T0 + timedelta(seconds=15 * i)
        d, state = decide(spec, state, observe({"q": 20}, now), Capacity(current=current), now)
        if d.desired != current:
            changed_at = i
            state = state.with_scale_event(now, current, d.desired)
            current = d.desired
            break
        assert "ScaleDownStabilized" in d.reasons
    assert changed_at == 20  # 300 s after the last recommendation of 10
    assert current == 2


# -- schedules: crontab numbering and DST edges ------------------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        pytest.param("1-5", "mon,tue,wed,thu,fri", id="weekdays"),
        pytest.param("0", "sun", id="zero-is-sunday"),
        pytest.param("7", "sun", id="seven-is-sunday"),
        pytest.param("5-7", "fri,sat,sun", id="range-to-seven"),
        pytest.param("6,0", "sat,sun", id="list"),
        pytest.param("*/2", "tue,thu,sat,sun", id="step-from-sunday"),
        pytest.param("MON-FRI", "mon,tue,wed,thu,fri", id="names"),
        pytest.param("0-6", "*", id="all"),
    ],
)
def test_crontab_day_numbering(field: str, expected: str) -> None:
    from gemini.policy.schedule import crontab_days

    assert crontab_days(field) == expected


@pytest.mark.parametrize("field", ["8", "x", "3-1", "*/0"])
def test_bad_day_of_week_rejected(field: str) -> None:
    from gemini.policy.schedule import check_cron

    with pytest.raises(ValueError, match="day"):
        check_cron(f"0 9 * * {field}")


@pytest.mark.parametrize(
    ("cron", "tz", "when", "active"),
    [
        pytest.param(
            "0 9 * * 1-5",
            "UTC",
            datetime(2026, 3, 7, 9, 15, tzinfo=UTC),
            False,
            id="saturday-not-a-weekday",
        ),
        pytest.param(
            "0 9 * * 1-5",
            "UTC",
            datetime(2026, 3, 6, 9, 15, tzinfo=UTC),
            True,
            id="friday-is-a-weekday",
        ),
        pytest.param(
            "0 9 * * 0", "UTC", datetime(2026, 3, 1, 9, 15, tzinfo=UTC), True, id="sunday-zero"
        ),
        # 02:30 does not exist in Berlin on 2026-03-29: APScheduler fires at 03:30 CEST (01:30 UTC)
        # when the window reaches back before the gap (durations under an hour may skip it)
        pytest.param(
            "30 2 * * *",
            "Europe/Berlin",
            datetime(2026, 3, 29, 1, 29, tzinfo=UTC),
            False,
            id="dst-gap-before",
        ),
        pytest.param(
            "30 2 * * *",
            "Europe/Berlin",
            datetime(2026, 3, 29, 1, 31, tzinfo=UTC),
            True,
            id="dst-gap-fires-after",
        ),
        # 01:30 happens twice in New York on 2026-11-01: active after each occurrence
        pytest.param(
            "30 1 * * *",
            "America/New_York",
            datetime(2026, 11, 1, 5, 31, tzinfo=UTC),
            True,
            id="dst-fold-first",
        ),
        pytest.param(
            "30 1 * * *",
            "America/New_York",
            datetime(2026, 11, 1, 7, 15, tzinfo=UTC),
            True,
            id="dst-fold-second-extends",
        ),
        pytest.param(
            "30 1 * * *",
            "America/New_York",
            datetime(2026, 11, 1, 7, 31, tzinfo=UTC),
            False,
            id="dst-fold-over",
        ),
        pytest.param(
            "30 1 * * *",
            "America/New_York",
            datetime(2026, 11, 1, 6, 31, tzinfo=UTC),
            True,
            id="dst-fold-second",
        ),
    ],
)
def test_schedule_activity(cron: str, tz: str, when: datetime, active: bool) -> None:
    from gemini.policy.schedule import is_active
    from gemini.policy.spec import Schedule

    sched = Schedule(name="s", cron=cron, time_zone=tz, duration_seconds=3600, min_replicas=5)
    assert is_active(sched, when) is active


# -- sequences and records -------------------------------------------------------------------------


def test_hpa_docs_scale_down_sequence() -> None:
    """HPA docs: 80 replicas, 10 %/60 s and 4 pods/60 s (Max), load for 10 replicas, a tick every
    15 s. One step per minute: 10 % while above 40 replicas, 4 pods below, then the target."""
    spec = make_spec(
        [{"name": "rps", "source": PROM, "target": {"type": "AverageValue", "averageValue": 100}}],
        down={
            **W0,
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 60},
                {"type": "Percent", "value": 10, "periodSeconds": 60},
            ],
        },
    )
    state, current = PolicyState(), 80
    per_minute = []
    for tick in range(14 * 4):
        now = T0 + timedelta(seconds=15 * tick)
        d, state = decide(spec, state, observe({"rps": 1000}, now), Capacity(current=current), now)
        if d.desired != current:
            assert tick % 4 == 0, f"changed mid-minute at tick {tick}"
            state = state.with_scale_event(now, current, d.desired)
            current = d.desired
        if tick % 4 == 3:
            per_minute.append(current)
    assert per_minute == [72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10]


def test_decision_round_trips_through_json() -> None:
    import json

    case = next(c for c in FALLBACK if c.id == "hold-missing-holds-down")
    decision, _ = run(case)
    again = Decision.from_dict(json.loads(json.dumps(decision.to_dict())))
    assert again == decision


def test_a_forecast_metric_says_how_far_back_it_was_read() -> None:
    """A metric with `offsetSeconds` arrives with its samples moved forward (the reader's job),
    so its sample time and age look current; the record carries the offset, so a reader of the
    decision (the dashboard, `gemini evaluate`) knows the value is from a day ago. Older records
    without the key read back as 0."""
    forecast = {
        "name": "forecast",
        "source": PROM,
        "target": {"type": "AverageValue", "averageValue": 100},
        "offsetSeconds": 82800,
        "windowSeconds": 3600,
        "windowFunction": "Max",
        "fallback": {"policy": "Ignore"},
    }
    spec = make_spec([metric("now", 1000.0), forecast])
    d, _ = decide(
        spec, PolicyState(), observe({"now": 500.0, "forecast": 700.0}, T0), Capacity(current=4), T0
    )
    by_name = {m.name: m for m in d.metrics}
    assert by_name["forecast"].offset_seconds == 82800
    assert by_name["forecast"].proposed == 7
    assert by_name["now"].offset_seconds == 0
    record = d.to_dict()
    assert [m["offsetSeconds"] for m in record["metrics"]] == [0, 82800]
    assert Decision.from_dict(record) == d
    for m in record["metrics"]:
        del m["offsetSeconds"]
    assert [m.offset_seconds for m in Decision.from_dict(record).metrics] == [0, 0]
    # a forecast with nothing to read yet (its first day) still says what it is
    d, _ = decide(spec, PolicyState(), observe({"now": 500.0}, T0), Capacity(current=4), T0)
    missing = next(m for m in d.metrics if m.name == "forecast")
    assert missing.status is MetricStatus.MISSING and missing.offset_seconds == 82800


@pytest.mark.parametrize(
    ("cron", "tz", "start"),
    [
        pytest.param(
            "30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 20, tzinfo=UTC), id="spring-gap"
        ),
        pytest.param(
            "30 1 * * *",
            "America/New_York",
            datetime(2026, 10, 31, 20, tzinfo=UTC),
            id="autumn-fold",
        ),
        pytest.param(
            "*/20 8-18 * * 1-5",
            "Asia/Tokyo",
            datetime(2026, 3, 6, 0, tzinfo=UTC),
            id="weekday-business-hours",
        ),
        pytest.param("0 0 1 * *", "UTC", datetime(2026, 1, 31, 12, tzinfo=UTC), id="monthly"),
    ],
)
def test_schedule_memo_gives_the_uncached_answer(cron: str, tz: str, start: datetime) -> None:
    """The memoized first-start lookup answers exactly like a fresh trigger, in time order and
    in shuffled order, across DST changes."""
    import random
    from zoneinfo import ZoneInfo

    from gemini.policy import schedule

    times = [start + timedelta(seconds=97 * i + 0.25) for i in range(1500)]  # ~40 h
    shuffled = times[:]
    random.Random(3).shuffle(shuffled)
    for when in times + shuffled:
        fresh = schedule.CronTrigger(
            minute=cron.split()[0],
            hour=cron.split()[1],
            day=cron.split()[2],
            month=cron.split()[3],
            day_of_week=schedule.crontab_days(cron.split()[4]),
            timezone=ZoneInfo(tz),
        ).get_next_fire_time(None, when.astimezone(ZoneInfo(tz)))
        assert schedule.first_start_at_or_after(cron, tz, when) == fresh, when
