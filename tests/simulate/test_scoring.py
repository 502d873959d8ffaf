"""Scores and baselines: the oracle never violates and nothing that meets the SLO is cheaper."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemini.simulate.replay import Grid, Run
from gemini.simulate.runner import simulate
from gemini.simulate.scenario import load_scenario
from gemini.simulate.scoring import (
    Slo,
    lead_floor_counts,
    oracle_counts,
    oracle_run,
    score,
    static_peak_run,
)
from tests.simulate.helpers import write_scenario

demands = st.lists(st.floats(0.0, 500.0, allow_nan=False), min_size=1, max_size=200)


def _grid(values: list[float]) -> Grid:
    return Grid(0.0, 15.0, tuple(values), (False,) * len(values))


@settings(max_examples=60, deadline=None)
@given(
    values=demands,
    cap=st.floats(0.1, 50.0),
    util=st.floats(0.1, 1.0),
    counts=st.lists(st.integers(0, 400), min_size=200, max_size=200),
)
def test_oracle_never_violates_and_is_a_lower_bound(
    values: list[float], cap: float, util: float, counts: list[int]
) -> None:
    grid = _grid(values)
    slo = Slo(util)
    oracle = score(oracle_run(grid, cap, slo), slo)
    assert oracle.slo_violation_minutes == 0
    assert score(static_peak_run(grid, cap, slo), slo).capacity_hours >= oracle.capacity_hours
    # any capacity series that meets the SLO costs at least as much as the oracle
    n = len(values)
    other = Run("x", "policy", grid, counts[:n], [c * cap for c in counts[:n]])
    s = score(other, slo)
    if s.slo_violation_minutes == 0:
        assert s.capacity_hours >= oracle.capacity_hours - 1e-9


def test_scores_by_hand() -> None:
    grid = Grid(0.0, 60.0, (1.0, 5.0, 5.0, 1.0, 1.0, 1.0), (False,) * 6)
    run = Run(
        "p",
        "policy",
        grid,
        [2, 2, 6, 6, 2, 4],
        [2.0, 2.0, 2.0, 6.0, 2.0, 4.0],
        events=[(120.0, 4), (240.0, -4), (300.0, 2)],
    )
    s = score(run, Slo(0.9), price=0.5, flap_window=90)
    assert s.capacity_hours == pytest.approx(22 / 60)
    assert s.cost == pytest.approx(11 / 60)
    assert s.slo_violation_minutes == 2.0  # steps 1 and 2: 5 > 2 x 0.9
    assert s.max_recovery_seconds == 120.0
    assert s.scale_events == 3
    assert s.flaps == 1  # -4 then +2 within 90 s; +4 then -4 is 120 s apart
    assert s.max_replicas == 6
    assert s.mean_replicas == pytest.approx(22 / 6)


def test_a_violation_too_short_for_the_rounding_still_shows() -> None:
    """Found by a 2 ms spike on a 1 ms grid: rounded to 4 decimals its violation minutes read
    0.0, so a run that violated (and cost less than the oracle) looked as if it met the SLO."""
    grid = Grid(0.0, 0.001, (1.0, 1000.0, 1000.0, 1.0), (False,) * 4)
    run = Run("p", "policy", grid, [2, 2, 2, 2], [2.0] * 4)
    out = score(run, Slo(0.9)).to_dict()
    assert out["sloViolationMinutes"] == 3.33e-05  # 2 ms, at three significant digits
    assert out["sloViolationShare"] == 0.5
    assert out["capacityHours"] == 2.22e-06  # 8 replica-milliseconds
    assert out["maxRecoverySeconds"] == 0.002
    # a value that does not round to zero keeps the usual four decimals
    coarse = Run("q", "policy", Grid(0.0, 60.0, (1.0,) * 7, (False,) * 7), [2] * 7, [2.0] * 7)
    assert score(coarse, Slo(0.9)).to_dict()["capacityHours"] == 0.2333  # 14 replica-minutes


def test_oracle_counts_are_remembered_per_grid_and_never_shared() -> None:
    grid = Grid(0.0, 60.0, (1.0, 5.0), (False, False))
    first = oracle_counts(grid, 1.0, Slo(0.9))
    first[0] = 99  # the caller's own list
    assert oracle_counts(grid, 1.0, Slo(0.9)) == [2, 6]
    assert oracle_counts(grid, 1.0, Slo(0.5)) == [2, 10]
    assert oracle_counts(Grid(0.0, 60.0, (1.0, 9.0), (False, False)), 1.0, Slo(0.9)) == [2, 10]


def test_masked_steps_do_not_count() -> None:
    grid = Grid(0.0, 60.0, (9.0, 9.0), (True, False))
    run = Run("p", "policy", grid, [1, 1], [1.0, 1.0])
    assert score(run, Slo(0.9)).slo_violation_minutes == 1.0


def test_queue_age_slo() -> None:
    grid = Grid(0.0, 60.0, (1.0, 1.0, 1.0), (False,) * 3)
    run = Run("q", "policy", grid, [2, 2, 2], [2.0, 2.0, 2.0], age=[0.0, 100.0, 400.0])
    assert score(run, Slo(0.9, max_age_seconds=300)).slo_violation_minutes == 1.0
    # load above capacity x maxUtilization violates too
    run = Run("q", "policy", grid, [2, 1, 2], [2.0, 1.0, 2.0], age=[0.0, 0.0, 0.0])
    assert score(run, Slo(0.9, max_age_seconds=300)).slo_violation_minutes == 1.0


def test_every_policy_and_baseline_against_the_oracle(tmp_path: Path) -> None:
    scenario = load_scenario(write_scenario(tmp_path))
    out = simulate(scenario)
    by = {s.name: s for s in out.scores}
    assert set(by) == {"web", "oracle", "static-peak", "hpa-default"}
    oracle = by["oracle"]
    assert oracle.slo_violation_minutes == 0
    assert by["static-peak"].slo_violation_minutes == 0
    for s in out.scores:
        if s.slo_violation_minutes == 0:
            assert s.capacity_hours >= oracle.capacity_hours
    # the replayed runs pay for starting pods, so they cannot undercut the oracle without violating
    assert by["web"].capacity_hours > oracle.capacity_hours or by["web"].slo_violation_minutes > 0


def _bigtable_policy() -> dict[str, object]:
    cluster = {"project": "p", "instance": "i", "cluster": "c"}
    return {
        "apiVersion": "autoscaling.gemini.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": "bt"},
        "spec": {
            "target": {"bigtable": cluster},
            "minReplicas": 1,
            "maxReplicas": 30,
            "metrics": [
                {
                    "name": "cpu",
                    "source": {"bigtable": cluster},
                    "target": {"type": "Utilization", "averageUtilization": 60},
                }
            ],
        },
    }


def _queue_policy() -> dict[str, object]:
    return {
        "apiVersion": "autoscaling.gemini.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": "worker"},
        "spec": {
            "target": {"kubernetes": {"name": "worker"}},
            "minReplicas": 1,
            "maxReplicas": 30,
            "metrics": [
                {
                    "name": "backlog",
                    "source": {"pubsub": {"subscription": "projects/p/subscriptions/jobs"}},
                    "target": {"type": "AverageValue", "averageValue": 50},
                }
            ],
        },
    }


@pytest.mark.parametrize(
    ("backend", "policy", "slo"),
    [
        ({"kind": "bigtable", "rebalanceSeconds": 1200, "storageTb": 8}, _bigtable_policy(), {}),
        ({"kind": "queue"}, _queue_policy(), {"maxAgeSeconds": 120}),
    ],
    ids=["bigtable", "queue"],
)
def test_oracle_invariants_for_every_backend(
    tmp_path: Path, backend: dict[str, object], policy: dict[str, object], slo: dict[str, object]
) -> None:
    path = write_scenario(tmp_path, policies=[policy], backend=backend, slo=slo)
    out = simulate(load_scenario(path))
    by = {s.name: s for s in out.scores}
    oracle = by["oracle"]
    assert oracle.slo_violation_minutes == 0
    for s in out.scores:
        assert s.capacity_hours >= oracle.capacity_hours or s.slo_violation_minutes > 0
    if backend["kind"] == "bigtable":
        # 8 TB / (5 TB x 0.7) -> a floor of 3 nodes for every run
        assert all(min(r.count) >= 3 for r in out.runs)


@pytest.mark.parametrize(
    ("oracle", "step", "lead", "want"),
    [
        pytest.param([1, 3, 2, 1, 1], 15, 0, [1, 3, 2, 1, 1], id="no-lead-is-the-oracle"),
        pytest.param([1, 3, 2, 1, 1], 15, 15, [3, 3, 2, 1, 1], id="one-step-ahead"),
        pytest.param([1, 3, 2, 1, 1], 15, 30, [3, 3, 2, 1, 1], id="two-steps-ahead"),
        pytest.param(
            [1, 1, 1, 4, 1], 60, 120, [1, 4, 4, 4, 1], id="a-spike-is-paid-from-lead-before"
        ),
        pytest.param([2, 1], 15, 14, [2, 1], id="lead-below-a-step-rounds-down"),
        pytest.param([], 15, 60, [], id="empty"),
    ],
)
def test_lead_floor_by_hand(oracle: list[int], step: float, lead: float, want: list[int]) -> None:
    assert lead_floor_counts(oracle, step, lead) == want


@given(
    st.lists(st.integers(0, 20), max_size=60),
    st.sampled_from([15.0, 60.0]),
    st.integers(0, 600),
)
@settings(max_examples=200, deadline=None)
def test_lead_floor_is_the_forward_window_maximum(
    oracle: list[int], step: float, lead: int
) -> None:
    ahead = int(lead / step + 1e-9)
    got = lead_floor_counts(oracle, step, lead)
    assert got == [max(oracle[j : j + ahead + 1]) for j in range(len(oracle))]
    assert all(g >= o for g, o in zip(got, oracle, strict=True))


@given(
    st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=1, max_size=40),
    st.sampled_from([0, 30, 60, 90, 120, 300]),
    st.integers(0, 6),
    st.lists(st.sampled_from([0, 0, 0, 0, -1, 1]), min_size=40, max_size=40),
    st.integers(0, 6),
)
@settings(max_examples=400, deadline=None)
def test_no_run_without_violations_is_cheaper_than_the_floor(
    steps: list[tuple[int, bool]], lead: int, ahead: int, noise: list[int], initial: int
) -> None:
    """Drive the deployment model (start-up `lead`) with runs that provision ahead of demand by
    `ahead` steps (plus noise): whatever never violates a scored step provisions at least the
    floor in total."""
    from gemini.simulate.models import DeploymentModel
    from gemini.simulate.scoring import no_violation_floor_counts

    step = 60.0
    demand = [d for d, _ in steps]
    grid = Grid(0.0, step, tuple(float(d) for d in demand), tuple(m for _, m in steps))
    floor = no_violation_floor_counts(grid, 1.0, Slo(max_utilization=1.0), 0, lead)
    model = DeploymentModel(1.0, startup_seconds=lead, initial=initial)
    counts, violated = [], False
    for k in range(len(demand)):
        t = k * step
        model.set_count(max(0, max(demand[k : k + ahead + 1]) + noise[k]), t)
        counts.append(model.count)
        if not grid.masked[k] and demand[k] > model.ready(t):
            violated = True
    if not violated:
        assert sum(counts) >= sum(floor)


def test_masked_steps_need_only_the_floor() -> None:
    from gemini.simulate.scoring import no_violation_floor_counts

    grid = Grid(0.0, 60.0, (1.0, 1.0, 1.0, 10.0, 1.0), (False, False, False, True, False))
    assert no_violation_floor_counts(grid, 1.0, Slo(max_utilization=1.0), 0, 120) == [
        1,
        1,
        1,
        1,
        1,
    ]
    scored = Grid(0.0, 60.0, grid.demand, (False,) * 5)
    assert no_violation_floor_counts(scored, 1.0, Slo(max_utilization=1.0), 0, 120) == [
        1,
        10,
        10,
        10,
        1,
    ]


def test_no_violation_floor_is_only_claimed_for_deployments(tmp_path: Path) -> None:
    from gemini.simulate.runner import grid_of
    from gemini.simulate.tuner import no_violation_floor

    queue = load_scenario(write_scenario(tmp_path, backend={"kind": "queue"}))
    assert no_violation_floor(queue, grid_of(queue)) is None


@given(
    st.floats(0.0, 1e15, allow_nan=False),
    st.floats(1e-3, 1e3),
    st.floats(0.05, 1.0),
    st.integers(0, 5),
)
@settings(max_examples=300, deadline=None)
def test_units_needed_is_the_least_that_the_scorer_accepts(
    load: float, per_unit: float, utilization: float, floor: int
) -> None:
    """At any magnitude (a handful of checks, not one per unit), and with the scorer's own test:
    the oracle's count never violates, one unit less would."""
    from gemini.simulate.scoring import overloaded, units_needed, violations

    slo = Slo(max_utilization=utilization)
    n = units_needed(load, per_unit, slo, floor)
    grid = Grid(0.0, 60.0, (load,), (False,))
    run = Run("oracle", "baseline", grid, [n], [n * per_unit], None, [])
    assert violations(run, slo) == [False]
    assert n == floor or overloaded(load, (n - 1) * per_unit, utilization)
