"""The tuner's target line search (`fit_target`) on synthetic responses: no replays, the
boundary is known, so the answer is exact."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemini.simulate.tuner import MAX_FIT_REPLAYS, Lattice, Param, fit_target

UTIL = Param("target", 30, 95)
VALUE = Param("target", 0.028, 0.175, integer=False, log=True)
LINEAR = Param("target", 0.0, 1.0, integer=False)


def response(
    boundary: float, *, worse: float = 10.0, holes: tuple[float, ...] = ()
) -> Callable[[float], tuple[float, float]]:
    """Capacity-hours fall as the target rises; violations are 0 up to `boundary` (and at the
    `holes` above it), `worse` plus the distance beyond it otherwise."""

    def evaluate(t: float) -> tuple[float, float]:
        ok = t <= boundary + 1e-12 or any(abs(t - h) < 1e-9 for h in holes)
        return 1000.0 / t if t > 0 else 1e9, 0.0 if ok else worse + (t - boundary)

    return evaluate


CASES = [
    # name, param, boundary, start, expected target, replays (with up to 12 allowed)
    ("start-below-the-boundary", UTIL, 77, 70, 77, 8),
    ("start-above-the-boundary", UTIL, 77, 90, 77, 8),
    ("start-on-the-boundary", UTIL, 77, 77, 77, 2),
    ("start-just-above", UTIL, 77, 78, 77, 2),
    ("everything-keeps-the-budget", UTIL, 200, 70, 95, 6),
    ("only-the-lowest-keeps-it", UTIL, 30, 95, 30, 9),
    ("start-outside-the-range", UTIL, 77, 120, 77, 10),
]


@pytest.mark.parametrize(
    ("case", "param", "boundary", "start", "expected", "replays"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_fit_lands_on_the_highest_target_that_keeps_the_budget(
    case: str, param: Param, boundary: float, start: float, expected: float, replays: int
) -> None:
    replayed: list[float] = []
    evaluate = response(boundary)

    def counted(t: float) -> tuple[float, float]:
        replayed.append(t)
        return evaluate(t)

    fit = fit_target(counted, param, start, budget=0.0, max_replays=12)
    assert fit.target == expected
    assert fit.violations == 0.0 and fit.hours == pytest.approx(1000.0 / expected)
    assert fit.replays == len(replayed) == len(set(replayed)) == replays


def test_a_fit_out_of_replays_keeps_the_best_it_saw() -> None:
    """From 95 down to 77 takes 10 replays; with the default 8 the fit stops between 76 and
    80, on the highest target it saw keep the budget."""
    fit = fit_target(response(77), UTIL, 120, budget=0.0)
    assert fit.replays == MAX_FIT_REPLAYS == 8
    assert fit.target == 76 and fit.violations == 0.0


def test_with_nothing_in_budget_the_fit_is_the_fewest_violations() -> None:
    fit = fit_target(response(10), UTIL, 70, budget=0.0)  # the boundary is below the range
    assert fit.target == 30 and fit.violations == pytest.approx(30.0)
    assert fit.replays <= MAX_FIT_REPLAYS


def test_the_fit_is_the_cheapest_point_replayed_not_the_last_feasible() -> None:
    """Whole replicas make violations only roughly monotone: a feasible point above an
    infeasible one is taken when it was replayed."""
    fit = fit_target(response(71, holes=(73.0,)), UTIL, 70, budget=0.0)
    # replays 70, 71, 73 (a hole: kept), 77 (breaks), then bisects 75, 74
    assert fit.target == 73


def test_a_walk_down_stops_once_it_costs_more_than_the_best_so_far() -> None:
    """Over the budget at 90 and already dearer there than the bound: lower targets only cost
    more, so the trial cannot win and one replay is enough."""
    fit = fit_target(response(77), UTIL, 90, budget=0.0, bound=1000.0 / 95)
    assert fit.replays == 1 and fit.target == 90 and fit.violations > 0
    # below the bound the walk goes on: 90, 89, 87, then 83 is over the budget and dearer
    fit = fit_target(response(77), UTIL, 90, budget=0.0, bound=1000.0 / 85, max_replays=12)
    assert fit.replays == 4 and fit.target == 83 and fit.violations > 0


def test_a_budget_above_zero_is_what_the_fit_keeps() -> None:
    # violations past the boundary are 10 + distance: a budget of 12 allows two steps more
    fit = fit_target(response(77), UTIL, 70, budget=12.0)
    assert fit.target == 79 and fit.violations == pytest.approx(12.0)


def test_a_value_target_is_fitted_in_two_percent_steps() -> None:
    # 18 steps of 2 % up from 0.07: six doublings and four bisections
    fit = fit_target(response(0.1), VALUE, 0.07, budget=0.0, max_replays=12)
    assert 0.1 / 1.02 <= fit.target <= 0.1 and fit.replays == 10


LATTICES = [
    # name, param, anchor, size
    ("integer", UTIL, 70, 66),
    ("integer-fractional-bounds", Param("target", 40.5, 80.2), 70, 40),
    ("value-log", VALUE, 0.07, 93),
    ("value-linear-override", Param("target", 1.0, 1000.0, integer=False), 10.0, 349),
    ("reaches-zero", LINEAR, 0.5, 101),
    ("pinned", Param("target", 0.07, 0.07, integer=False), 0.07, 1),
]


@pytest.mark.parametrize(
    ("case", "param", "anchor", "size"), LATTICES, ids=[c[0] for c in LATTICES]
)
def test_the_lattice_spans_the_range_holds_the_anchor_and_round_trips(
    case: str, param: Param, anchor: float, size: int
) -> None:
    lattice = Lattice(param, anchor)
    values = [lattice.value(i) for i in range(lattice.size)]
    assert lattice.size == size
    step = 1.0 if param.integer else (param.high - param.low) / 100
    relative = not param.integer and param.low > 0
    # the first and last values are inside the range, within one step of its ends
    lowest, highest = values[0], values[-1]
    assert param.low - 1e-12 <= lowest <= param.high + 1e-12
    assert param.low - 1e-12 <= highest <= param.high + 1e-12
    if relative:
        assert lowest < param.low * 1.0201 and highest > param.high / 1.0201
    else:
        assert lowest < param.low + step + 1e-12 and highest > param.high - step - 1e-12
    assert all(a < b for a, b in itertools.pairwise(values))
    assert [lattice.index(v) for v in values] == list(range(lattice.size))
    # what a person would write: 3 significant digits, but the policy's own target as it is
    assert all(v == float(f"{v:.3g}") for v in values if v != anchor)
    assert lattice.value(lattice.index(anchor)) == pytest.approx(anchor, rel=1e-12)
    assert lattice.index(param.low - 1) == 0 and lattice.index(param.high + 1) == lattice.size - 1


def test_a_value_target_starts_at_exactly_the_policy_own() -> None:
    replayed: list[float] = []

    def evaluate(t: float) -> tuple[float, float]:
        replayed.append(t)
        return response(0.1)(t)

    fit_target(evaluate, VALUE, 0.07, budget=0.0)
    assert replayed[0] == 0.07 and replayed[1] == pytest.approx(0.07 * 1.02)


@given(
    boundary=st.integers(30, 95),
    start=st.integers(30, 95),
)
def test_a_monotone_response_is_fitted_exactly_given_the_replays(boundary: int, start: int) -> None:
    """Doubling then bisection: never past the boundary; exact with enough replays."""
    short = fit_target(response(boundary), UTIL, start, budget=0.0)
    assert short.violations == 0.0 and short.target <= boundary
    assert short.replays <= MAX_FIT_REPLAYS
    exact = fit_target(response(boundary), UTIL, start, budget=0.0, max_replays=20)
    assert exact.target == boundary
    # and within log2 of the distance, twice, plus the start
    assert exact.replays <= 2 * math.ceil(math.log2(abs(boundary - start) + 2)) + 2


def test_every_fit_walks_the_lattice_through_the_policy_own_target() -> None:
    """Each fit starts at the best trial's fitted target. A lattice anchored there instead of at
    the policy's own value drifted once values were rounded: from 1.2, two fits of one step up
    each gave 1.24, where the policy's own lattice has 1.25."""
    param = Param("target", 0.48, 3.0, integer=False, log=True)
    own = Lattice(param, 1.2)
    on_it = {own.value(i) for i in range(own.size)}
    start = 1.2
    for _ in range(6):  # each fit: a budget that allows one lattice step more
        replayed: list[float] = []

        def evaluate(
            t: float, limit: float = start, seen: list[float] = replayed
        ) -> tuple[float, float]:
            seen.append(t)
            return 1 / t, 0.0 if t <= limit * 1.03 else 1.0

        fit = fit_target(evaluate, param, start, budget=0.0, anchor=1.2)
        assert set(replayed) <= on_it, sorted(set(replayed) - on_it)
        assert fit.target > start
        start = fit.target
    assert start == own.value(own.index(1.2) + 6)
