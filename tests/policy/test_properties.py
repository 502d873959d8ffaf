"""Hypothesis properties of `decide()`: bounds, rate limits over sequences of ticks, tolerance,
partial data, purity, state round-trips and bounded state size."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gemini.policy.decision import Capacity
from gemini.policy.engine import decide
from gemini.policy.spec import Spec
from gemini.policy.state import PolicyState, Recommendation, ScaleEvent
from gemini.series import Observation
from tests.policy.test_engine import make_spec, metric

T0 = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
PERIODS = [15, 30, 60, 120, 300]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Rate:
    """A direction's rate policies as drawn, to check decisions against independently."""

    select: str
    policies: tuple[tuple[str, int, int], ...]  # (type, value, periodSeconds)


@st.composite
def rates(draw: st.DrawFn, up: bool) -> Rate:
    n = draw(st.integers(1, 3))
    policies = []
    for _ in range(n):
        kind = draw(st.sampled_from(["Pods", "Percent"]))
        if kind == "Pods":
            value = draw(st.integers(1, 8))
        else:
            value = draw(st.integers(1, 300 if up else 100))
        policies.append((kind, value, draw(st.sampled_from(PERIODS))))
    return Rate(draw(st.sampled_from(["Max", "Min"])), tuple(policies))


def rules(rate: Rate, window: int, tolerance: float) -> dict[str, Any]:
    return {
        "selectPolicy": rate.select,
        "stabilizationWindowSeconds": window,
        "tolerance": tolerance,
        "policies": [{"type": k, "value": v, "periodSeconds": p} for k, v, p in rate.policies],
    }


@dataclass(frozen=True)
class Drawn:
    spec: Spec
    up: Rate
    down: Rate
    tolerance: float
    metrics: tuple[str, ...]


@st.composite
def specs(draw: st.DrawFn, n_metrics: int | None = None, min_lo: int = 1) -> Drawn:
    lo = draw(st.integers(min_lo, 5))
    hi = draw(st.integers(max(lo, 1), 60))
    up, down = draw(rates(True)), draw(rates(False))
    tolerance = draw(st.sampled_from([0.0, 0.05, 0.1, 0.2]))
    n = n_metrics or draw(st.integers(1, 2))
    names = tuple(f"m{i}" for i in range(n))
    spec = make_spec(
        [metric(name, 100.0) for name in names],
        min_replicas=lo,
        max_replicas=hi,
        up=rules(up, draw(st.sampled_from([0, 0, 30, 60])), tolerance),
        down=rules(down, draw(st.sampled_from([0, 30, 300])), tolerance),
    )
    return Drawn(spec, up, down, tolerance, names)


@st.composite
def states(draw: st.DrawFn, hi: int) -> PolicyState:
    recs = draw(st.lists(st.tuples(st.integers(1, 600), st.integers(0, hi * 3)), max_size=25))
    events = draw(st.lists(st.tuples(st.integers(1, 600), st.integers(-10, 10)), max_size=6))
    return PolicyState(
        recommendations=tuple(
            Recommendation(T0 - timedelta(seconds=s), n) for s, n in sorted(recs, reverse=True)
        ),
        scale_events=tuple(
            ScaleEvent(T0 - timedelta(seconds=s), c) for s, c in sorted(events, reverse=True) if c
        ),
    )


values = st.floats(0.0, 5000.0, allow_nan=False)
any_values = values | st.floats(allow_nan=False, allow_infinity=False)


def observations(
    names: tuple[str, ...], vals: list[float | None], now: datetime
) -> list[Observation]:
    return [Observation.of(n, now, v) for n, v in zip(names, vals, strict=True) if v is not None]


# -- bounds ---------------------------------------------------------------------------------------


@SETTINGS
@given(data=st.data())
def test_desired_within_bounds(data: st.DataObject) -> None:
    drawn = data.draw(specs())
    spec = drawn.spec
    state = data.draw(states(spec.max_replicas))
    current = data.draw(st.integers(1, spec.max_replicas * 2))
    vals = data.draw(
        st.lists(st.none() | any_values, min_size=len(drawn.metrics), max_size=len(drawn.metrics))
    )
    decision, _ = decide(
        spec, state, observations(drawn.metrics, vals, T0), Capacity(current=current), T0
    )
    assert spec.min_replicas <= decision.desired <= spec.max_replicas, decision.reasons


# -- rate policies over a sequence of ticks ---------------------------------------------------------


def replicas_at(initial: int, events: list[tuple[datetime, int]], at: datetime) -> int:
    """The replica count just after every event at or before `at`."""
    return initial + sum(c for t, c in events if t <= at)


def up_limit(rate: Rate, initial: int, events: list[tuple[datetime, int]], now: datetime) -> int:
    limits = []
    for kind, value, period in rate.policies:
        start = replicas_at(initial, events, now - timedelta(seconds=period))
        limits.append(start + value if kind == "Pods" else -(-start * (100 + value) // 100))
    return max(limits) if rate.select == "Max" else min(limits)


def down_limit(rate: Rate, initial: int, events: list[tuple[datetime, int]], now: datetime) -> int:
    limits = []
    for kind, value, period in rate.policies:
        start = replicas_at(initial, events, now - timedelta(seconds=period))
        limits.append(start - value if kind == "Pods" else start * (100 - value) // 100)
    return min(limits) if rate.select == "Max" else max(limits)


@SETTINGS
@given(data=st.data())
def test_never_beyond_rate_policy(data: st.DataObject) -> None:
    drawn = data.draw(specs(n_metrics=1))
    spec = drawn.spec
    initial = data.draw(st.integers(spec.min_replicas, spec.max_replicas))
    ticks = data.draw(st.lists(st.tuples(st.integers(1, 40), values), min_size=5, max_size=40))
    state, current, now = PolicyState(), initial, T0
    events: list[tuple[datetime, int]] = []
    for gap, value in ticks:
        now += timedelta(seconds=gap)
        decision, state = decide(
            spec, state, [Observation.of("m0", now, value)], Capacity(current=current), now
        )
        new = decision.desired
        if new > current:
            assert new <= max(current, up_limit(drawn.up, initial, events, now)), decision.steps
        elif new < current:
            assert new >= min(current, down_limit(drawn.down, initial, events, now)), decision.steps
        if new != current:
            state = state.with_scale_event(now, current, new)
            events.append((now, new - current))
            current = new
        assert replicas_at(initial, events, now) == current


# -- tolerance and partial data ------------------------------------------------------------------


@SETTINGS
@given(data=st.data())
def test_no_change_within_tolerance(data: st.DataObject) -> None:
    drawn = data.draw(specs())
    spec = drawn.spec
    state = data.draw(states(spec.max_replicas))
    current = data.draw(st.integers(spec.min_replicas, spec.max_replicas))
    tol = drawn.tolerance
    ratios = data.draw(
        st.lists(
            st.floats(1.0 - tol, 1.0 + tol),
            min_size=len(drawn.metrics),
            max_size=len(drawn.metrics),
        )
    )
    vals: list[float | None] = [100.0 * r for r in ratios]
    decision, _ = decide(
        spec, state, observations(drawn.metrics, vals, T0), Capacity(current=current), T0
    )
    assert decision.desired == current, decision.reasons
    assert "WithinTolerance" in decision.reasons


@SETTINGS
@given(data=st.data())
def test_no_scale_down_on_partial_data(data: st.DataObject) -> None:
    drawn = data.draw(specs(n_metrics=2))
    spec = drawn.spec
    state = data.draw(states(spec.max_replicas))
    current = data.draw(st.integers(spec.min_replicas, spec.max_replicas))
    missing = data.draw(st.integers(0, 1))
    failed = data.draw(st.sampled_from(["absent", "error", "empty"]))
    present = data.draw(values)
    obs = [Observation.of(drawn.metrics[1 - missing], T0, present)]
    if failed == "error":
        obs.append(Observation.failed(drawn.metrics[missing], "Unavailable", "down"))
    elif failed == "empty":
        obs.append(Observation(drawn.metrics[missing]))
    decision, _ = decide(spec, state, obs, Capacity(current=current), T0)
    assert decision.desired >= current, decision.reasons


# -- purity --------------------------------------------------------------------------------------


@SETTINGS
@given(data=st.data())
def test_pure(data: st.DataObject) -> None:
    drawn = data.draw(specs())
    spec = drawn.spec
    state = data.draw(states(spec.max_replicas))
    current = data.draw(st.integers(0, spec.max_replicas * 2))
    vals = data.draw(
        st.lists(st.none() | values, min_size=len(drawn.metrics), max_size=len(drawn.metrics))
    )
    obs = observations(drawn.metrics, vals, T0)
    cap = Capacity(current=current, floor=data.draw(st.none() | st.integers(0, 10)))
    before = (spec.model_dump(), copy.deepcopy(state), copy.deepcopy(obs), copy.deepcopy(cap))
    first = decide(spec, state, obs, cap, T0, policy="ns/p")
    second = decide(spec, state, obs, cap, T0, policy="ns/p")
    assert first == second
    assert (spec.model_dump(), state, obs, cap) == before


# -- state ----------------------------------------------------------------------------------------


def run_ticks(
    spec: Spec, names: tuple[str, ...], ticks: list[tuple[int, list[float | None]]], initial: int
) -> list[PolicyState]:
    state, current, now = PolicyState(), initial, T0
    out = []
    for gap, vals in ticks:
        now += timedelta(seconds=gap)
        decision, state = decide(
            spec, state, observations(names, vals, now), Capacity(current=current), now
        )
        if decision.desired != current:
            state = state.with_scale_event(now, current, decision.desired)
            current = decision.desired
        out.append(state)
    return out


@SETTINGS
@given(data=st.data())
def test_state_round_trips(data: st.DataObject) -> None:
    drawn = data.draw(specs())
    n = len(drawn.metrics)
    ticks = data.draw(
        st.lists(
            st.tuples(st.integers(1, 40), st.lists(st.none() | values, min_size=n, max_size=n)),
            min_size=1,
            max_size=15,
        )
    )
    # sub-second times survive too
    ticks = [(gap, vals) for gap, vals in ticks]
    for state in run_ticks(drawn.spec, drawn.metrics, ticks, drawn.spec.min_replicas):
        status = state.to_status()
        assert PolicyState.from_status(status) == state
        assert PolicyState.from_status(json.loads(json.dumps(status))) == state


def test_state_size_bounded_over_long_runs() -> None:
    import random

    rng = random.Random(7)
    spec = make_spec(
        [metric("m0"), metric("m1")],
        max_replicas=80,
        down={"policies": [{"type": "Pods", "value": 1, "periodSeconds": 600}]},
    )
    ticks: list[tuple[int, list[float | None]]] = []
    for i in range(3000):
        wave = 100 + 90 * ((i // 40) % 2)
        ticks.append((15, [rng.uniform(0.5, 1.5) * wave, None if i % 7 == 0 else 120.0]))
    sizes = [
        (len(s.recommendations), len(s.scale_events), len(s.failures))
        for s in run_ticks(spec, ("m0", "m1"), ticks, 4)
    ]
    # down window 300 s at 15 s -> at most 20 recommendations; events live 600 s -> at most 40
    assert max(r for r, _, _ in sizes) <= 20
    assert max(e for _, e, _ in sizes) <= 40
    assert max(f for _, _, f in sizes) <= 2
    assert len(json.dumps(run_ticks(spec, ("m0", "m1"), ticks[:200], 4)[-1].to_status())) < 4000
