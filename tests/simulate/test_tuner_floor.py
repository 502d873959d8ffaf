"""The learned daily floor (`tune.dailyFloor`): profile, schedules, and the tune that uses them."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gemini.policy import schedule
from gemini.policy.spec import parse_policy
from gemini.simulate.replay import Grid
from gemini.simulate.runner import grid_of
from gemini.simulate.scenario import load_scenario
from gemini.simulate.tuner import DailyProfile, apply_params, daily_profile, search_space, tune
from tests.simulate.helpers import policy_doc, write_scenario

DAY = 86400


@dataclass(frozen=True)
class FloorCase:
    name: str
    counts: tuple[int, ...]
    factor: float
    low: int
    high: int
    lead: int
    # (cron, durationSeconds, minReplicas)
    expected: list[tuple[str, int, int]]


# four 6-hour slots a day keep the tables short
FLOOR_CASES = [
    FloorCase("all-below-min", (1, 2, 2, 1), 1.0, 2, 50, 120, []),
    FloorCase(
        "runs-of-equal-slots-merge",
        (4, 4, 9, 4),
        1.0,
        1,
        50,
        120,
        [
            ("58 23 * * *", 2 * 6 * 3600 + 120, 4),
            ("58 11 * * *", 6 * 3600 + 120, 9),
            ("58 17 * * *", 6 * 3600 + 120, 4),
        ],
    ),
    FloorCase(
        "factor-rounds-up-and-high-caps",
        (10, 3, 40, 7),
        0.5,
        2,
        12,
        600,
        [
            ("50 23 * * *", 6 * 3600 + 600, 5),
            ("50 11 * * *", 6 * 3600 + 600, 12),
            ("50 17 * * *", 6 * 3600 + 600, 4),
        ],
    ),
    # 0.7 x 10 is 7 exactly (no float drift up to 8)
    FloorCase("exact-product", (10, 10, 10, 10), 0.7, 1, 50, 0, [("0 0 * * *", DAY, 7)]),
    FloorCase("zero-factor", (10, 10, 10, 10), 0.0, 0, 50, 0, []),
]


@pytest.mark.parametrize("case", FLOOR_CASES, ids=lambda c: c.name)
def test_profile_schedules(case: FloorCase) -> None:
    got = DailyProfile(DAY // len(case.counts), case.lead, case.counts).schedules(
        case.factor, case.low, case.high
    )
    assert [(s["cron"], s["durationSeconds"], s["minReplicas"]) for s in got] == case.expected
    assert all(s["timeZone"] == "UTC" for s in got)
    assert len({s["name"] for s in got}) == len(got)


def test_the_floor_is_active_from_lead_before_each_run_to_its_end() -> None:
    """Through the engine's own schedule evaluation: each slot's floor holds from `lead`
    before it starts to its end; where two overlap the higher wins."""
    profile = DailyProfile(6 * 3600, 600, (4, 4, 9, 4))
    spec = parse_policy(policy_doc(schedules=profile.schedules(1.0, 1, 40))).spec
    midnight = 20 * DAY

    def floor_at(seconds: float) -> int:
        when = datetime.fromtimestamp(midnight + seconds, UTC)
        return schedule.bounds(1, 50, spec.schedules, when).min_replicas

    assert floor_at(0) == 4
    assert floor_at(12 * 3600 - 601) == 4
    assert floor_at(12 * 3600 - 600) == 9  # lead before the 12:00 slot
    assert floor_at(18 * 3600 - 601) == 9
    assert floor_at(18 * 3600 - 1) == 9  # the higher of two overlapping
    assert floor_at(18 * 3600) == 4
    assert floor_at(DAY - 600) == 4  # tomorrow's first run starts lead early too


def _floor_scenario(tmp: Path, values: list[float]) -> Path:
    """Per-minute demand from 00:00 UTC, 2/s a replica, a 150 s start-up, tuned with a floor."""
    return write_scenario(
        tmp,
        values,
        backend={"capacityPerReplica": 2.0, "startupSeconds": 150},
        stepSeconds=60,
        tune={"decimate": 2, "dailyFloor": True},
    )


def test_daily_profile_is_the_median_day_of_the_oracle_from_the_training_part(
    tmp_path: Path,
) -> None:
    """Hand-checkable: three days, each half hour's demand constant; the middle day is the
    median. The lead is the start-up rounded up to a whole minute."""
    values = [
        level * (1 + (minute // 30) % 2)
        for level in (10.0, 30.0, 20.0)
        for minute in range(DAY // 60)
    ]
    sc = load_scenario(_floor_scenario(tmp_path, values))
    grid = grid_of(sc)
    profile = daily_profile(sc, sc.policies[0], grid)
    assert profile is not None
    assert profile.slot_seconds == 1800 and profile.lead_seconds == 180
    # the median day is 20/s: 20 / (2.0 x 0.9) -> 12 replicas, 40/s -> 23
    assert profile.counts == tuple(12 if i % 2 == 0 else 23 for i in range(48))
    # fewer than two whole days: no profile; a policy with its own schedules: none either
    assert (
        daily_profile(
            sc, sc.policies[0], Grid(grid.t0, 60.0, grid.demand[:2000], grid.masked[:2000])
        )
        is None
    )
    own = parse_policy(
        policy_doc(
            schedules=[{"name": "x", "cron": "0 8 * * *", "durationSeconds": 60, "minReplicas": 2}]
        )
    )
    assert daily_profile(sc, own, grid) is None
    # masked steps (a gap, an excluded window) do not count: without day 1's 60/s the odd
    # slots' days are 12 and 23 replicas, and the lower median is 12
    masked = Grid(grid.t0, grid.step, grid.demand, tuple(d > 45 for d in grid.demand))
    quiet = daily_profile(sc, sc.policies[0], masked)
    assert quiet is not None and max(quiet.counts) == 12


def test_floor_factor_is_searched_only_when_asked() -> None:
    policy = parse_policy(policy_doc())
    assert "floorFactor" not in {p.name for p in search_space(policy)}
    assert "floorFactor" in {p.name for p in search_space(policy, daily_floor=True)}
    profile = DailyProfile(1800, 120, tuple([3] * 24 + [20] * 24))
    assert apply_params(policy, {"floorFactor": 0}, profile).spec.schedules == []
    assert apply_params(policy, {"floorFactor": 1.0}).spec.schedules == []  # no profile
    floored = apply_params(policy, {"floorFactor": 1.0}, profile)
    assert [(s.cron, s.min_replicas) for s in floored.spec.schedules] == [
        ("58 23 * * *", 3),
        ("58 11 * * *", 20),
    ]


def test_with_a_floor_the_anchors_add_the_follow_the_load_one_on_the_floor_at_1x() -> None:
    from gemini.simulate.tuner import starting_points

    policy = parse_policy(policy_doc())
    plain = starting_points(policy, search_space(policy))
    floored = starting_points(policy, search_space(policy, daily_floor=True))
    assert [{k: v for k, v in a.items() if k != "floorFactor"} for a in floored[:3]] == plain
    assert [a["floorFactor"] for a in floored] == [0, 0, 0, 1.0]
    assert floored[3] == {**floored[2], "floorFactor": 1.0}


def test_tune_with_a_daily_floor_learns_it_from_the_training_part_only(tmp_path: Path) -> None:
    """Four days of a repeating day. The tuned manifest's schedules come from the training
    part: changing the held-back part changes no schedule. The policy the search reports
    reproduces its searched score when replayed with them."""
    from gemini.simulate.runner import run_policy, score_run
    from gemini.simulate.tuner import _train_grid, with_margin

    rng = random.Random(5)
    values = [
        round(5 + 40 * (0.5 - 0.5 * math.cos(2 * math.pi * i / 1440)) + rng.uniform(-2.5, 2.5), 3)
        for i in range(4 * 1440)
    ]

    def tuned(values: list[float]) -> Any:
        sc = load_scenario(_floor_scenario(tmp_path, values))
        return sc, tune(sc, trials=4, seed=1, jobs=1)

    sc, res = tuned(values)
    out = res.to_dict()
    assert "floorFactor" in out["best"]["params"]
    train, _ = grid_of(sc).split(sc.spec.tune.train_fraction)
    profile = daily_profile(sc, sc.policies[0], train)
    assert profile is not None
    assert out["dailyFloor"]["counts"] == list(profile.counts)
    # the manifest's schedules are the profile's at the best factor
    want = profile.schedules(res.params["floorFactor"], 1, sc.policies[0].spec.max_replicas)
    assert [s.cron for s in res.policy.spec.schedules] == [s["cron"] for s in want]
    assert want  # the floor anchor wins on this repeating day: a real list, not two empty ones
    # replaying the best policy on the raised training demand gives the searched score
    raised = _train_grid(sc, train).scaled(1.0 + res.margin)
    best = with_margin(apply_params(sc.policies[0], res.params, profile), res.margin)
    s = score_run(sc, run_policy(sc, best, raised))
    assert s.capacity_hours == pytest.approx(res.searched["capacityHours"], abs=1e-3)
    # held-back demand doubled: the learned profile is the same
    cut = int(len(values) * sc.spec.tune.train_fraction)
    changed = values[: cut + 10] + [v * 2 for v in values[cut + 10 :]]
    _, res2 = tuned(changed)
    assert res2.to_dict()["dailyFloor"] == out["dailyFloor"]
    assert math.isfinite(res2.test.capacity_hours)


def test_floor_schedules_are_named_by_the_hhmm_their_slot_starts_at() -> None:
    counts = tuple(5 if i in (0, 2, 23, 47) else 1 for i in range(48))  # half hours
    names = [s["name"] for s in DailyProfile(1800, 120, counts).schedules(1.0, 1, 50)]
    assert names == ["tuned-floor-0000", "tuned-floor-0100", "tuned-floor-1130", "tuned-floor-2330"]
