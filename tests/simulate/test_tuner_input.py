"""`gemini tune` on odd input: field-named errors before any replay (not an IndexError after
the search), ranges checked against the policy's own validation, and notes for what the
tuner does on the user's behalf. Found by an adversarial run of `gemini tune`."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gemini.cli import app
from gemini.errors import SpecError
from gemini.simulate.replay import Grid
from gemini.simulate.scenario import Range, load_scenario
from gemini.simulate.tuner import (
    REPEAT_MIN_R,
    Param,
    apply_params,
    repeating_changes,
    search_space,
    tradeoff_values,
    tune,
)
from tests.simulate.helpers import daily_wave, policy_doc, write_scenario

TOO_SHORT: list[tuple[str, dict[str, Any], list[float] | None, str]] = [
    (
        "max-days-under-two-steps",
        {"tune": {"maxDays": 0.0001}},
        None,
        "tune.maxDays: 0.0001 days is 0 steps of 15 s; training needs 2 at least",
    ),
    (
        "held-back-part-empty",
        {"stepSeconds": 3600},
        [1.0, 2.0],
        "tune.trainFraction: 0.7 of the trace's 1 steps of 3600 s leaves 1 to train on and 0 "
        "held back; each part needs 2 at least (a longer trace, or a smaller stepSeconds)",
    ),
    (
        "training-part-all-excluded",
        {"trace": {"exclude": [{"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T10:00:00Z"}]}},
        None,
        "tune.trainFraction: every one of the 2015 training steps is inside a long gap or an "
        "exclude window: nothing to score a trial on",
    ),
    (
        # the last half day of training is excluded: the check ran before the cut
        "max-days-all-excluded",
        {
            "trace": {
                "exclude": [{"start": "2024-01-01T02:00:00Z", "end": "2024-01-01T09:00:00Z"}]
            },
            "tune": {"maxDays": 0.1},
        },
        None,
        "tune.maxDays: the last 0.1 days of the training part are all inside long gaps or "
        "exclude windows: nothing to score a trial on",
    ),
    (
        # any target keeps any budget on no load: the search took the highest, 95 %, above
        # the SLO's 90 %, and the held-back part violated at every step with load
        "training-part-without-load",
        {},
        [0.0] * 600 + [3.0] * 120,
        "tune.trainFraction: the training part has no load at any scored step: nothing to tune "
        "against",
    ),
    (
        "decimate-beyond-the-training-part",
        {"tune": {"decimate": 100_000}},
        None,
        "tune.decimate: 100000 turns the 2015 training steps into 1; training needs 2 at least",
    ),
]


@pytest.mark.parametrize(
    ("case", "override", "values", "message"), TOO_SHORT, ids=[c[0] for c in TOO_SHORT]
)
def test_parts_too_short_to_replay_are_refused_naming_the_field(
    tmp_path: Path, case: str, override: dict[str, Any], values: list[float] | None, message: str
) -> None:
    sc = load_scenario(write_scenario(tmp_path, values, **override))
    with pytest.raises(SpecError) as err:
        tune(sc, trials=1, jobs=1)
    assert "; ".join(f"{p}: {m}" for p, m in err.value.problems) == message


SPACE: list[tuple[str, dict[str, Any], str]] = [
    (
        "negative-window",
        {"scaleDownWindow": {"low": -100, "high": -1}},
        "tune.space.scaleDownWindow: low -100 makes an invalid policy "
        "(spec.behavior.scaleDown.stabilizationWindowSeconds:",
    ),
    (
        "window-beyond-the-policy-limit",
        {"metricWindow": {"low": 1e15, "high": 1e16}},
        "tune.space.metricWindow: low 1e+15 makes an invalid policy (spec.metrics[0].windowSeconds",
    ),
    (
        "zero-period",
        {"scaleUpPeriod": {"low": 0, "high": 0}},
        "tune.space.scaleUpPeriod: low 0 makes an invalid policy",
    ),
    (
        "no-whole-number",
        {"target": {"low": 30.5, "high": 30.7}},
        "tune.space.target: no whole number between 30.5 and 30.7",
    ),
    (
        # it was searched linearly, without a word
        "log-from-zero",
        {"scaleUpTolerance": {"low": 0, "high": 0.2, "log": True}},
        "tune.space.scaleUpTolerance: a log range needs low > 0 (got 0); or set log: false",
    ),
    (
        "floor-without-daily-floor",
        {"floorFactor": {"low": 0, "high": 1}},
        "tune.space.floorFactor: searched only with tune.dailyFloor",
    ),
]


def test_an_infinite_search_bound_is_a_field_error(tmp_path: Path) -> None:
    """It was an OverflowError traceback (whole-number ranges) or numpy's (floorFactor)."""
    for name, rng in (
        ("scaleDownWindow", {"low": 0, "high": math.inf}),
        ("target", {"low": -math.inf, "high": 80}),
    ):
        path = write_scenario(tmp_path, tune={"space": {name: rng}})
        with pytest.raises(SpecError) as err:
            load_scenario(path)
        end = "high" if rng["high"] == math.inf else "low"
        assert (f"tune.space.{name}.{end}", "must be a finite number") in err.value.problems


@pytest.mark.parametrize(("case", "space", "message"), SPACE, ids=[c[0] for c in SPACE])
def test_search_ranges_outside_the_parameters_domain_are_refused_before_any_replay(
    case: str, space: dict[str, Any], message: str
) -> None:
    from gemini.policy.spec import parse_policy
    from gemini.simulate.scenario import Range

    policy = parse_policy(policy_doc())
    with pytest.raises(SpecError) as err:
        search_space(policy, {k: Range.model_validate(v) for k, v in space.items()})
    text = "; ".join(f"{p}: {m}" for p, m in err.value.problems)
    assert text.startswith(message), text


def test_integer_ranges_are_narrowed_to_whole_numbers() -> None:
    from gemini.policy.spec import parse_policy
    from gemini.simulate.scenario import Range

    policy = parse_policy(policy_doc())
    space = search_space(policy, {"target": Range(low=30.5, high=40.2)})
    target = next(p for p in space if p.name == "target")
    assert (target.low, target.high) == (31, 40)


def test_a_disabled_direction_stays_disabled_in_the_tuned_manifest() -> None:
    """`selectPolicy: Disabled` used to become Max with Percent 100: the tuned manifest scaled
    down a workload whose owner had turned scale-down off."""
    from gemini.policy.spec import parse_policy

    doc = policy_doc(behavior={"scaleDown": {"selectPolicy": "Disabled"}})
    tuned = apply_params(
        parse_policy(doc), {"scaleDownPercent": 50, "scaleDownPeriod": 60, "scaleUpPercent": 200}
    )
    behavior = tuned.spec.behavior
    assert behavior is not None and behavior.scale_down is not None
    assert behavior.scale_down.select_policy.value == "Disabled"
    assert behavior.scale_up is not None and behavior.scale_up.policies[0].value == 200


def test_a_disabled_direction_is_not_searched(tmp_path: Path) -> None:
    """Its parameters were sampled and reported in best.params (scaleDownWindow 0, ...) though
    the manifest carries none of them; a tune.space range for one is refused, naming it."""
    from gemini.policy.spec import parse_policy

    doc = policy_doc(behavior={"scaleDown": {"selectPolicy": "Disabled"}})
    names = {p.name for p in search_space(parse_policy(doc))}
    assert "scaleUpPercent" in names and not {n for n in names if n.startswith("scaleDown")}
    path = write_scenario(tmp_path, tune={"decimate": 4})
    (tmp_path / "policies" / "web.yaml").write_text(yaml.safe_dump(doc))
    data = tune(load_scenario(path), trials=2, jobs=1, tradeoff=False).to_dict()
    assert not [k for k in data["best"]["params"] if k.startswith("scaleDown")]
    assert data["best"]["policy"]["spec"]["behavior"]["scaleDown"]["selectPolicy"] == "Disabled"
    with pytest.raises(SpecError, match=r"tune\.space\.scaleDownWindow: scaleDown is disabled"):
        search_space(parse_policy(doc), {"scaleDownWindow": Range(low=0, high=600)})


def test_a_step_scaling_policy_starts_the_search_at_its_own_steps() -> None:
    """The first trial of a step-scaling policy is its own steps (stepScale 1), as a target
    policy's is its own target; it was a random factor."""
    from gemini.policy.spec import parse_policy
    from gemini.simulate.tuner import starting_points

    steps = {
        "name": "utilization",
        "source": {"prometheus": {"serverAddress": "http://p:9090", "query": "up"}},
        "stepScaling": {
            "steps": [
                {"lowerBound": 0.7, "upperBound": 0.9, "adjustment": 1},
                {"lowerBound": 0.9, "adjustment": 3},
            ]
        },
    }
    policy = parse_policy(policy_doc(metrics=[steps]))
    starts = starting_points(policy, search_space(policy))
    assert starts and all(s["stepScale"] == 1.0 for s in starts)
    assert "target" not in starts[0] and starts[0]["scaleDownWindow"] == 300
    same = apply_params(policy, starts[0])
    m = same.spec.metrics[0]
    assert m.step_scaling is not None
    assert [(s.lower_bound, s.upper_bound) for s in m.step_scaling.steps] == [
        (0.7, 0.9),
        (0.9, None),
    ]


MILLION = [(0.1234567, 1e6), (1e6, 1000001.0), (1000001.0, None)]
CLOSE = [(1.0, 1e6), (1e6, 1000000.000001), (1000000.000001, None)]


@pytest.mark.parametrize(
    ("bounds", "scale", "expected"),
    [
        pytest.param(MILLION, 1.0, MILLION, id="own-steps-as-written"),
        pytest.param(
            MILLION,
            1.23,
            [(0.151851741, 1230000.0), (1230000.0, 1230001.23), (1230001.23, None)],
            id="scaled-without-float-dust",
        ),
        pytest.param(
            CLOSE,
            1.23,
            [(1.23, 1230000.0), (1230000.0, 1230000.00000123), (1230000.00000123, None)],
            id="12-digits-would-tie",
        ),
    ],
)
def test_scaled_steps_stay_apart_and_the_own_steps_as_written(
    bounds: list[tuple[float, float | None]],
    scale: float,
    expected: list[tuple[float, float | None]],
) -> None:
    """Bounds 1 apart at a million: rounding them to 6 digits made two equal, and the manifest
    was refused (lowerBound must be below upperBound) at every scale, the policy's own (1)
    included. Its own steps are not rewritten; scaled ones lose float dust (100 x 1.23 is 123,
    not 123.00000000000001), never the difference between two bounds."""
    from gemini.policy.spec import parse_policy

    steps = {
        "name": "latency",
        "source": {"prometheus": {"serverAddress": "http://p:9090", "query": "up"}},
        "stepScaling": {
            "steps": [
                {"lowerBound": lo, "adjustment": i + 1} | ({} if hi is None else {"upperBound": hi})
                for i, (lo, hi) in enumerate(bounds)
            ]
        },
    }
    policy = parse_policy(policy_doc(metrics=[steps]))
    m = apply_params(policy, {"stepScale": scale}).spec.metrics[0]
    assert m.step_scaling is not None
    got = [(s.lower_bound, s.upper_bound) for s in m.step_scaling.steps]
    assert got == [
        (pytest.approx(lo, rel=1e-15), hi and pytest.approx(hi, rel=1e-15)) for lo, hi in expected
    ]
    assert len({b for pair in got for b in pair}) == len({b for pair in expected for b in pair})
    if bounds is MILLION:
        assert got[0][1] == expected[0][1]  # exactly, not within float dust


def test_a_sampled_tolerance_is_written_as_picked() -> None:
    """A log-scale tolerance range (tune.space) picks 3 significant digits (0.00123); the
    manifest rounded tolerances to 4 decimals again (0.0012), so it differed from the params
    the JSON reported and from what the trials replayed."""
    from gemini.policy.spec import parse_policy
    from gemini.simulate.tuner import picked

    log_range = Param("scaleUpTolerance", 0.001, 0.3, integer=False, log=True)
    linear = Param("scaleDownTolerance", 0.0, 0.5, integer=False)
    up, down = picked(log_range, 0.00123456), picked(linear, 0.123456)
    assert (up, down) == (0.00123, 0.1235)
    tuned = apply_params(
        parse_policy(policy_doc()), {"scaleUpTolerance": up, "scaleDownTolerance": down}
    )
    behavior = tuned.spec.behavior
    assert behavior.scale_up is not None and behavior.scale_down is not None
    assert (behavior.scale_up.tolerance, behavior.scale_down.tolerance) == (up, down)


def test_tune_says_what_it_did_on_the_users_behalf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gemini.simulate.commands import tune_command

    shadow = policy_doc("second", mode="Shadow")
    path = write_scenario(
        tmp_path,
        policies=[policy_doc(mode="Shadow"), shadow],
        tune={"dailyFloor": True},
    )
    out = tmp_path / "t.json"
    assert tune_command(path, 1, 0, out, None, 1) == 0
    err = capsys.readouterr().err
    assert "note: the scenario has 2 policies; tuning web (number 1)" in err
    assert "tune.dailyFloor: no floor learned (the training part has fewer than two" in err
    assert "spec.mode is Shadow: it is tuned as if Active" in err
    import json

    assert len(json.loads(out.read_text())["notes"]) == 3


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_outside_what_the_sampler_takes_is_a_usage_error(tmp_path: Path, seed: str) -> None:
    path = write_scenario(tmp_path)
    result = CliRunner().invoke(app, ["tune", str(path), "--trials", "1", "--seed", seed])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_held_back_part_inside_an_exclude_window_is_noted(tmp_path: Path) -> None:
    window = {"start": "2024-01-01T08:00:00Z", "end": "2024-01-01T13:00:00Z"}
    sc = load_scenario(write_scenario(tmp_path, trace={"exclude": [window]}))
    result = tune(sc, trials=1, jobs=1)
    assert any("held-back part is all inside" in n for n in result.notes)


def test_the_held_back_parts_sampling_does_not_change_how_training_is_read(
    tmp_path: Path,
) -> None:
    """No peeking: long gaps (not scored) are those over three median sample intervals of the
    training part. With the whole file's median, a held-back part sampled every 2 minutes made
    a 6-minute gap in the 1-minute training part scored, and the search saw a different
    training part (budget 0 against 36.9 minutes in the adversarial run)."""
    from datetime import timedelta

    from gemini.simulate.tuner import split_grid
    from tests.simulate.helpers import T0

    def scenario(sub: str, held_back_every: int) -> Any:
        minutes = [m for m in range(600) if not 100 <= m < 105]  # a 6-minute gap at 01:39
        minutes += list(range(600, 3000, held_back_every))
        rows = [f"{(T0 + timedelta(minutes=m)).isoformat()},{1 + m % 7}" for m in minutes]
        (tmp_path / sub).mkdir()
        path = write_scenario(tmp_path / sub, tune={"trainFraction": 0.2})
        (tmp_path / sub / "trace.csv").write_text("timestamp,value\n" + "\n".join(rows) + "\n")
        return load_scenario(path)

    one, two = scenario("a", 1), scenario("b", 2)
    assert one.trace.spacing() == 60 and two.trace.spacing() == 120  # the whole files differ
    (_, train_one, _), (_, train_two, _) = split_grid(one), split_grid(two)
    assert train_one == train_two
    gap = [k for k, m in enumerate(train_one.masked) if m]
    assert gap and train_one.time(gap[0]) < T0.timestamp() + 105 * 60


@pytest.mark.parametrize(("late", "noted"), [(80.0, True), (1.5, False)])
def test_a_unit_decided_by_the_held_back_part_is_noted(
    tmp_path: Path, late: float, noted: bool
) -> None:
    """`utilizationUnit: auto` is decided on the whole file (simulate and tune must read it
    alike); when only held-back values make it percent, tune says so."""
    values = [1.2] * 540 + [late] * 180  # training: the first 504 minutes
    sc = load_scenario(
        write_scenario(tmp_path, values, trace={"kind": "utilization", "recordedReplicas": 4})
    )
    result = tune(sc, trials=1, jobs=1)
    assert any("utilizationUnit: auto" in n for n in result.notes) is noted


def test_a_forecast_target_may_be_searched_until_it_all_but_drops_out() -> None:
    """A metric read `offsetSeconds` back is a forecast that may not pay on a trace whose day
    does not repeat: its target's range reaches 10x (an ordinary metric's: 2.5x)."""
    from gemini.policy.spec import parse_policy

    load = {
        "name": "load",
        "source": {"prometheus": {"serverAddress": "http://p:9090", "query": "load"}},
        "target": {"type": "AverageValue", "averageValue": 2},
    }
    doc = policy_doc()
    doc["spec"]["metrics"] += [load, {**load, "name": "forecast", "offsetSeconds": 84600}]
    space = {p.name: p for p in search_space(parse_policy(doc))}
    assert (space["target.load"].low, space["target.load"].high) == pytest.approx((0.8, 5.0))
    assert (space["target.forecast"].low, space["target.forecast"].high) == pytest.approx((0.8, 20))
    # a forecast listed first keeps its window (its horizon): no metricWindow to search
    doc["spec"]["metrics"] = doc["spec"]["metrics"][2:] + doc["spec"]["metrics"][:2]
    first = {p.name for p in search_space(parse_policy(doc))}
    assert "metricWindow" not in first and "metricWindow" in space


@pytest.mark.parametrize(
    ("param", "best", "expected"),
    [
        pytest.param(Param("target", 30, 95), 70, [56, 63, 70, 77, 88], id="utilization"),
        pytest.param(Param("target", 30, 95), 84, [67, 76, 84, 92, 95], id="clipped-at-95"),
        pytest.param(Param("target", 30, 95), 94, [75, 85, 94, 95], id="both-clipped-once"),
        pytest.param(Param("target", 30, 95), 31, [30, 31, 34, 39], id="clipped-at-30"),
        pytest.param(
            Param("target", 0.1, 2.0, integer=False),
            1.0,
            [0.8, 0.9, 1.0, 1.1, 1.25],
            id="average-value",
        ),
        pytest.param(
            Param("target", 0.02, 0.2, integer=False, log=True),
            0.0673,
            [0.0538, 0.0606, 0.0673, 0.074, 0.0841],
            id="three-significant-digits",
        ),
        pytest.param(
            Param("stepScale", 0.5, 2.0, integer=False),
            1.9,
            [1.52, 1.71, 1.9, 2.0],
            id="step-scale-clipped",
        ),
    ],
)
def test_tradeoff_values(param: Param, best: float, expected: list[float]) -> None:
    """The trade-off moves the chosen value by fixed factors, within the parameter's range and
    lattice, each value once; the chosen value itself is kept exactly."""
    got = tradeoff_values(param, best)
    assert got == pytest.approx(expected)
    assert best in got
    assert all(v == float(f"{v:.3g}") for v in got)  # 0.0538, not 0.05384


def _grid(values: list[float], step: float = 300.0, masked: set[int] | None = None) -> Grid:
    return Grid(0.0, step, tuple(values), tuple(k in (masked or set()) for k in range(len(values))))


def _noise(n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(0, 1) for _ in range(n)]


HOUR, DAY = 12, 288  # steps of 5 minutes


@pytest.mark.parametrize(
    ("values", "masked", "period"),
    [
        pytest.param(
            [a + (5.0 if k % HOUR == 2 else 0.0) for k, a in enumerate(_noise(20 * DAY))],
            None,
            3600,
            id="an-hourly-job",
        ),
        pytest.param(
            [
                0.1 * a
                + 10 * max(0.0, math.sin(2 * math.pi * (k % DAY) / DAY))
                + (4.0 if k % DAY == 100 else 0.0)
                for k, a in enumerate(_noise(10 * DAY))
            ],
            None,
            86400,
            id="a-day-with-a-morning-jump",
        ),
        pytest.param(_noise(10 * DAY), None, None, id="noise-repeats-nothing"),
        pytest.param(
            [k / DAY + 0.01 * a for k, a in enumerate(_noise(10 * DAY))],
            None,
            None,
            id="a-smooth-rise-levels-correlate-changes-do-not",
        ),
        pytest.param(
            [5.0 if k % HOUR == 2 else 0.0 for k in range(HOUR + 5)],
            None,
            None,
            id="less-than-two-periods",
        ),
        pytest.param([1.0] * (3 * DAY), None, None, id="a-constant-load"),
        pytest.param(
            [
                a + (50.0 if DAY <= k < 2 * DAY and k % 7 == 0 else 0.0)
                for k, a in enumerate([5.0 if k % HOUR == 2 else 0.0 for k in range(4 * DAY)])
            ],
            set(range(DAY, 2 * DAY)),
            3600,
            id="an-outage-is-left-out",
        ),
    ],
)
def test_the_tuner_finds_the_period_a_loads_changes_repeat_at(
    values: list[float], masked: set[int] | None, period: int | None
) -> None:
    """`repeating_changes`: the hint behind the tuner's forecast note. Changes, not levels:
    a smooth rise correlates with itself an hour later without repeating anything."""
    got = repeating_changes(_grid(values, masked=masked))
    assert (got[0] if got else None) == period
    if got:
        assert REPEAT_MIN_R <= got[1] <= 1.0


def test_tune_suggests_a_forecast_when_the_load_repeats(tmp_path: Path) -> None:
    """A policy without a forecast metric, on a trace with an hourly job, gets a note naming
    the period; a policy that has one does not."""
    values = [2.0 + (6.0 if k % 60 in (9, 10, 11) else 0.0) for k in range(60 * 30)]
    path = write_scenario(tmp_path, values, tune={"decimate": 4})
    res = tune(load_scenario(path), trials=1, seed=0, jobs=1, tradeoff=False)
    [note] = [n for n in res.notes if "repeat" in n]
    assert "every 1 h (correlation 1.00" in note and "offsetSeconds" in note
    forecast = {
        "name": "forecast",
        "source": {"prometheus": {"serverAddress": "http://p:9090", "query": "load"}},
        "target": {"type": "AverageValue", "averageValue": 0.8},
        "offsetSeconds": 3000,
        "windowSeconds": 600,
        "windowFunction": "Max",
        "fallback": {"policy": "Ignore"},
    }
    doc = policy_doc()
    doc["spec"]["metrics"].append(forecast)
    path = write_scenario(tmp_path, values, tune={"decimate": 4}, observe={"forecast": "load"})
    (tmp_path / "policies" / "web.yaml").write_text(yaml.safe_dump(doc))
    res = tune(load_scenario(path), trials=1, seed=0, jobs=1, tradeoff=False)
    assert not [n for n in res.notes if "repeat" in n]


def test_the_tradeoff_of_a_part_the_oracle_needs_nothing_for(tmp_path: Path) -> None:
    """With minReplicas 0 and a held-back part without load, the oracle's capacity-hours there
    are 0 and there is no ratio to it: the trade-off says so (None) instead of failing."""
    values = [3.0] * 300 + [0.0] * 200
    path = write_scenario(tmp_path, values, tune={"trainFraction": 0.6})
    (tmp_path / "policies" / "web.yaml").write_text(yaml.safe_dump(policy_doc(minReplicas=0)))
    res = tune(load_scenario(path), trials=2, seed=0, jobs=1)
    assert res.oracle_hours["test"] == 0
    points = res.to_dict()["tradeoff"]["points"]
    assert len(points) >= 3
    assert all(p["test"]["oracleRatio"] is None for p in points)
    assert all(p["train"]["oracleRatio"] is not None for p in points)


def test_a_budget_under_one_step_is_one_step_when_hpa_default_violates(tmp_path: Path) -> None:
    """A constant load on 2 replicas that need 6: hpa-default's only violation is the start-up
    minute, and 0.9 of it (60 s steps) allowed no violation at all, so every trial was over
    the budget. The budget is one step, no more than hpa-default's."""
    sc = load_scenario(write_scenario(tmp_path, [5.0] * 600, stepSeconds=60))
    result = tune(sc, trials=2, jobs=1, tradeoff=False)
    assert result.baselines["hpa-default"]["train"].slo_violation_minutes == 1.0
    assert result.budget == 1.0 and result.feasible


def test_an_unlimited_budget_is_null_in_the_json(tmp_path: Path) -> None:
    """JSON has no infinity: `sloBudgetMinutes: .inf` wrote `Infinity`, which parsers refuse."""
    sc = load_scenario(write_scenario(tmp_path, tune={"sloBudgetMinutes": math.inf}))
    data = tune(sc, trials=1, jobs=1, tradeoff=False).to_dict()
    assert data["sloBudgetMinutes"] is None
    json.loads(json.dumps(data), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))


def test_the_tuned_manifest_keeps_the_users_metadata(tmp_path: Path) -> None:
    """No `namespace: default` the user did not write (`kubectl apply -n prod` refuses it), no
    empty labels; a namespace the user wrote stays."""
    from gemini.policy.spec import parse_policy
    from gemini.simulate.tuner import manifest_yaml

    plain = apply_params(parse_policy(policy_doc()), {"target": 75})
    doc = yaml.safe_load(manifest_yaml(plain))
    assert doc["metadata"] == {"name": "web"}
    assert doc["spec"]["metrics"][0]["target"]["averageUtilization"] == 75
    placed = policy_doc()
    placed["metadata"].update(namespace="prod", labels={"team": "web"})
    doc = yaml.safe_load(manifest_yaml(apply_params(parse_policy(placed), {"target": 75})))
    assert doc["metadata"] == {"name": "web", "namespace": "prod", "labels": {"team": "web"}}
    # and what tune writes (it re-parsed a dump to add its annotation: namespace: default)
    data = tune(load_scenario(write_scenario(tmp_path)), trials=1, jobs=1, tradeoff=False)
    tuned_on = {"annotations": {"gemini.dev/tuned-on": "synthetic"}}
    assert yaml.safe_load(manifest_yaml(data.policy))["metadata"] == {"name": "web", **tuned_on}
    assert data.to_dict()["best"]["policy"]["metadata"] == {"name": "web", **tuned_on}


def test_tune_outputs_to_stdout_and_refuses_two_outputs_in_one_place(tmp_path: Path) -> None:
    path = write_scenario(tmp_path)
    runner = CliRunner()
    got = runner.invoke(app, ["tune", str(path), "--trials", "1", "--jobs", "1", "--json", "-"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["trials"] == 1  # the JSON alone on stdout
    assert not Path("-").exists()
    got = runner.invoke(
        app, ["tune", str(path), "--trials", "1", "--out-policy", "-", "--json", "-"]
    )
    assert got.exit_code == 2 and "only one output can go to stdout" in got.stderr
    same = tmp_path / "out"
    got = runner.invoke(
        app, ["tune", str(path), "--trials", "1", "--out-policy", str(same), "--json", str(same)]
    )
    assert got.exit_code == 2 and "--json and --out-policy name the same file" in got.stderr


def test_the_tuned_manifest_carries_the_float_values_the_trials_scored(tmp_path: Path) -> None:
    """A fitted value target and the trade-off points have three significant digits
    (averageValue 0.0673, not 0.06728181468665898), tolerances four decimals: what a person
    writes, and exactly what the trials replayed; the JSON's params are the manifest's."""
    doc = policy_doc()
    doc["spec"]["metrics"] = [
        {
            "name": "load",
            "source": {"prometheus": {"serverAddress": "http://p:9090", "query": "load"}},
            "target": {"type": "AverageValue", "averageValue": 0.7},
        }
    ]
    values = [3.0 + 2.0 * math.sin(k / 40) + random.Random(k).random() for k in range(900)]
    path = write_scenario(tmp_path, values, tune={"decimate": 4}, observe={"load": "load"})
    (tmp_path / "policies" / "web.yaml").write_text(yaml.safe_dump(doc))
    data = tune(load_scenario(path), trials=6, seed=1, jobs=1).to_dict()
    params = data["best"]["params"]
    floats = {k: v for k, v in params.items() if isinstance(v, float)}
    assert "target" in floats and "scaleUpTolerance" in floats
    tolerances = {k: v for k, v in floats.items() if k.endswith("Tolerance")}
    assert all(v == round(v, 4) for v in tolerances.values()), tolerances
    assert floats["target"] == float(f"{floats['target']:.3g}")
    assert floats["target"] != 0.7  # the fit moved off the policy's own target
    spec = data["best"]["policy"]["spec"]
    assert spec["metrics"][0]["target"]["averageValue"] == floats["target"]
    assert spec["behavior"]["scaleUp"]["tolerance"] == floats["scaleUpTolerance"]
    assert spec["behavior"]["scaleDown"]["tolerance"] == floats["scaleDownTolerance"]
    points = data["tradeoff"]["points"]
    assert len(points) >= 3
    assert all(p["value"] == float(f"{p['value']:.3g}") for p in points)


@pytest.mark.parametrize(
    "space",
    [
        pytest.param({"low": 0.1, "high": 1e308, "log": True}, id="high-1e308"),
        pytest.param({"low": 1e-320, "high": 1.0, "log": True}, id="subnormal-low"),
        pytest.param({"low": 1e-7, "high": 1e6}, id="13-orders"),
    ],
)
def test_a_target_range_too_wide_is_a_field_error(tmp_path: Path, space: dict[str, Any]) -> None:
    """A range over 12 orders of magnitude overflowed the lattice's arithmetic (an
    OverflowError traceback from a worker); it is refused, naming the field."""
    doc = policy_doc()
    doc["spec"]["metrics"][0]["target"] = {"type": "AverageValue", "averageValue": 0.5}
    path = write_scenario(tmp_path, tune={"space": {"target": space}})
    (tmp_path / "policies" / "web.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match=r"tune\.space\.target: range too wide") as err:
        tune(load_scenario(path), trials=1, jobs=1)
    assert "high / low may be at most 1e+12" in str(err.value.problems)


def test_the_tradeoff_of_a_tiny_target_keeps_its_digits(tmp_path: Path) -> None:
    """Points were rounded to 6 decimals: around a fitted 7.1e-07 all five read 1e-06."""
    doc = policy_doc()
    doc["spec"]["metrics"][0]["target"] = {"type": "AverageValue", "averageValue": 8e-7}
    values = [v * 1e-6 for v in daily_wave(6)]
    path = write_scenario(tmp_path, values, tune={"decimate": 4})
    (tmp_path / "policies" / "web.yaml").write_text(yaml.safe_dump(doc))
    data = tune(load_scenario(path), trials=1, seed=0, jobs=1).to_dict()
    points = [p["value"] for p in data["tradeoff"]["points"]]
    assert len(set(points)) == len(points) >= 3
    chosen = next(p["value"] for p in data["tradeoff"]["points"] if p["chosen"])
    assert chosen == data["best"]["params"]["target"]
