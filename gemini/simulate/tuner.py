"""The tuner: search a policy's parameters to minimise cost under an SLO budget (Optuna, seeded).

Owns the search space, the train/test split (train on the first `tune.trainFraction` of the
series, report the held-back rest separately: the search never sees it), parallel evaluation in
worker processes and the best manifest. Every evaluation is a full closed-loop replay through
`gemini.loop.tick`. Must not import `gemini.metrics` sources, `gemini.scalers` (other than via the
replay) or cloud libraries.

Objective: capacity-hours on the training part; constraint: SLO-violation minutes there <= the
budget (`tune.sloBudgetMinutes`, else hpa-default's violation minutes on the same demand x
`tune.sloBudgetFactor`, default 0.9: a margin for the held-back part). Trials
replay the training demand raised by `tune.demandMargin` (default 5 %), and both sides of the
constraint count on that raised demand: the best policy must keep up with more load than it was
tuned on, so it is not one that only just fits the training part. Optuna's TPE sampler handles
the constraint (feasible trials always rank first). With `tune.fitTarget` (the default) the
first metric's target is not sampled: each trial's line search (`fit_target`) sets it to the
highest target that keeps the budget, so every trial sits on the budget and trials compare by
cost alone.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from gemini.clock import span
from gemini.errors import SpecError
from gemini.policy.spec import (
    MAX_REPLICAS,
    MetricTarget,
    ScalingPolicy,
    TargetType,
    parse_policy,
)
from gemini.simulate.replay import Grid
from gemini.simulate.runner import (
    baseline_runs,
    grid_of,
    hpa_default_policy,
    run_policy,
    score_run,
    slo_of,
)
from gemini.simulate.scenario import Range, Scenario
from gemini.simulate.scoring import Score, no_violation_floor_counts, oracle_counts


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    low: float
    high: float
    integer: bool = True
    log: bool = False


def _target_param(name: str, target: MetricTarget, offset: int = 0) -> Param:
    if target.type is TargetType.UTILIZATION:
        return Param(name, 30, 95)
    amount = target.amount
    # a forecast (a metric read `offsetSeconds` back) may be worth little on a trace whose day
    # does not repeat: up to 10x its target, the search can all but turn it off
    return Param(name, amount * 0.4, amount * (10.0 if offset else 2.5), integer=False, log=True)


# the widest float range (high / low) a search may span: 12 orders of magnitude (a lattice of
# 2 % steps over it has ~1,400 values; beyond, an end could overflow the arithmetic)
MAX_RANGE_RATIO = 1e12


def _disabled_directions(policy: ScalingPolicy) -> list[str]:
    behavior = policy.spec.behavior
    rules = {"scaleUp": behavior.scale_up, "scaleDown": behavior.scale_down} if behavior else {}
    return [d for d, r in rules.items() if r is not None and r.select_policy.value == "Disabled"]


def search_space(
    policy: ScalingPolicy, overrides: dict[str, Range] | None = None, *, daily_floor: bool = False
) -> list[Param]:
    """Declared parameters with defaults; `tune.space` in the scenario overrides the ranges.
    `daily_floor` adds `floorFactor` (see `DailyProfile`)."""
    space: list[Param] = []
    metric = policy.spec.metrics[0]
    if metric.target is not None:
        space.append(_target_param("target", metric.target, metric.offset_seconds))
    elif metric.step_scaling is not None:
        space.append(Param("stepScale", 0.5, 2.0, integer=False, log=True))
    # every further metric's own target (a queue policy reading arrivals and backlog: the
    # replica count is the largest proposal, so either target can set the cost)
    for other in policy.spec.metrics[1:]:
        if other.target is not None:
            space.append(_target_param(f"target.{other.name}", other.target, other.offset_seconds))
    # metric smoothing: 0 reads the newest sample; > 0 reduces that span with Max (noise is
    # absorbed without under-reading a rise: Max over a window never lags a peak). Not for a
    # forecast first: its window is its horizon, paired with its offset.
    if not metric.offset_seconds:
        space.append(Param("metricWindow", 0, 900))
    space += [
        Param("scaleUpTolerance", 0.0, 0.3, integer=False),
        Param("scaleDownTolerance", 0.0, 0.5, integer=False),
        Param("scaleUpWindow", 0, 300),
        Param("scaleUpPercent", 20, 400, log=True),
        Param("scaleUpPeriod", 15, 120),
        Param("scaleUpCooldown", 0, 300),
        Param("scaleDownWindow", 0, 1800),
        Param("scaleDownPercent", 5, 100, log=True),
        Param("scaleDownPods", 1, 10),
        Param("scaleDownPeriod", 15, 600),
        Param("scaleDownCooldown", 0, 900),
    ]
    # a direction the user turned off (selectPolicy: Disabled) stays off: nothing to search
    disabled = _disabled_directions(policy)
    space = [p for p in space if not any(p.name.startswith(d) for d in disabled)]
    if daily_floor:
        space.append(Param("floorFactor", 0.0, 1.5, integer=False))
    for name, rng in (overrides or {}).items():
        where = f"tune.space.{name}"
        known = {p.name for p in space}
        off = next((d for d in disabled if name.startswith(d)), None)
        if off is not None:
            raise SpecError(
                f"{where}: {off} is disabled",
                [(where, f"the policy's behavior.{off}.selectPolicy is Disabled")],
            )
        if name == "floorFactor" and not daily_floor:
            raise SpecError(
                f"{where}: no daily floor",
                [
                    (
                        where,
                        "searched only with tune.dailyFloor, when the training part has two "
                        "whole days and the policy no schedules of its own",
                    )
                ],
            )
        if name not in known:
            raise SpecError(
                f"{where}: unknown parameter",
                [(where, f"unknown parameter; known: {', '.join(sorted(known))}")],
            )
        own = next(p for p in space if p.name == name)
        low, high = rng.low, rng.high
        if own.integer:
            low, high = math.ceil(low), math.floor(high)
            if low > high:
                raise SpecError(
                    f"{where}: no whole number in range",
                    [(where, f"no whole number between {rng.low:g} and {rng.high:g}")],
                )
        if rng.log and low <= 0:
            raise SpecError(
                f"{where}: log with low {low:g}",
                [(where, f"a log range needs low > 0 (got {low:g}); or set log: false")],
            )
        if not own.integer and low > 0 and not high / low <= MAX_RANGE_RATIO:
            raise SpecError(
                f"{where}: range too wide",
                [
                    (
                        where,
                        f"high / low may be at most {MAX_RANGE_RATIO:g} (got {high:g} / {low:g})",
                    )
                ],
            )
        _check_range(policy, where, name, low, high, {p.name for p in space})
        space = [Param(p.name, low, high, p.integer, rng.log) if p is own else p for p in space]
    return space


def _check_range(
    policy: ScalingPolicy, where: str, name: str, low: float, high: float, names: set[str]
) -> None:
    """Both ends of an overridden range make a valid manifest, the other parameters at HPA's
    defaults (the policy's own validation is the parameter's domain): a range that cannot is
    refused before any replay, naming it."""
    if name == "floorFactor":
        if low < 0:
            raise SpecError(f"{where}: negative", [(where, f"low {low:g} must be >= 0")])
        return
    # (a period applies only with its percent, and so on)
    others = {k: v for k, v in HPA_DEFAULTS.items() if k in names and k != "target"}
    for end, value in (("low", low), ("high", high)):
        try:
            apply_params(policy, {**others, name: value})
        except SpecError as exc:
            field, message = exc.problems[0]
            raise SpecError(
                f"{where}: {end} {value:g} makes an invalid policy",
                [(where, f"{end} {value:g} makes an invalid policy ({field}: {message})")],
            ) from None


def apply_params(
    policy: ScalingPolicy, params: dict[str, float], profile: DailyProfile | None = None
) -> ScalingPolicy:
    """A copy of the policy with the parameters set; validated like any manifest. With a
    `profile`, `floorFactor` becomes the policy's daily floor schedules."""
    doc = manifest_doc(policy)
    spec = doc["spec"]
    if profile is not None and params.get("floorFactor"):
        floors = profile.schedules(
            float(params["floorFactor"]), policy.spec.min_replicas, policy.spec.max_replicas
        )
        if floors:
            spec["schedules"] = [*spec.get("schedules", []), *floors]
    m0 = spec["metrics"][0]
    for i, m in enumerate(spec["metrics"]):
        key = "target" if i == 0 else f"target.{m['name']}"
        if key in params and "target" in m:
            t = m["target"]
            if t["type"] == "Utilization":
                t["averageUtilization"] = round(params[key])
            elif t["type"] == "AverageValue":
                t["averageValue"] = float(params[key])
            else:
                t["value"] = float(params[key])
    if "stepScale" in params and "stepScaling" in m0 and float(params["stepScale"]) != 1.0:
        _scale_steps(m0["stepScaling"]["steps"], float(params["stepScale"]))
    if "metricWindow" in params:
        w = int(params["metricWindow"])
        m0["windowSeconds"] = w
        m0["windowFunction"] = "Max" if w > 0 else "Last"
    behavior = spec.setdefault("behavior", {})
    for direction, prefix in (("scaleUp", "scaleUp"), ("scaleDown", "scaleDown")):
        rules = behavior.get(direction) or {}
        if rules.get("selectPolicy") == "Disabled":
            continue  # the user turned this direction off: no tuning turns it back on
        if f"{prefix}Window" in params:
            rules["stabilizationWindowSeconds"] = int(params[f"{prefix}Window"])
        if f"{prefix}Percent" in params:
            period = int(params.get(f"{prefix}Period", 15))
            pct = round(params[f"{prefix}Percent"])
            pols: list[dict[str, Any]] = [
                {"type": "Percent", "value": pct, "periodSeconds": period}
            ]
            if direction == "scaleUp":
                pols.append({"type": "Pods", "value": 4, "periodSeconds": period})
            elif "scaleDownPods" in params:
                pods = max(1, round(params["scaleDownPods"]))
                pols.append({"type": "Pods", "value": pods, "periodSeconds": period})
            rules["policies"] = pols
            rules["selectPolicy"] = "Max"
        if f"{prefix}Cooldown" in params:
            rules["cooldownSeconds"] = int(params[f"{prefix}Cooldown"])
        if f"{prefix}Tolerance" in params:
            rules["tolerance"] = float(params[f"{prefix}Tolerance"])
        behavior[direction] = rules
    return parse_policy(doc)


def _scale_steps(steps: list[dict[str, Any]], factor: float) -> None:
    """The step bounds times `factor`, to 12 significant digits (100 x 1.23 is 123, not
    123.00000000000001), unless that would make two different bounds equal."""
    keys = [(step, key) for step in steps for key in ("lowerBound", "upperBound")]
    keys = [(step, key) for step, key in keys if step.get(key) is not None]
    exact = [step[key] * factor for step, key in keys]
    rounded = [significant(v, 12) for v in exact]
    if len(set(rounded)) != len(set(exact)):
        rounded = exact
    for (step, key), v in zip(keys, rounded, strict=True):
        step[key] = v


HPA_DEFAULTS: dict[str, float] = {
    "target": 70,
    "metricWindow": 0,
    "scaleUpTolerance": 0.1,
    "scaleDownTolerance": 0.1,
    "scaleUpWindow": 0,
    "scaleUpPercent": 100,
    "scaleUpPeriod": 15,
    "scaleUpCooldown": 0,
    "scaleDownWindow": 300,
    "scaleDownPercent": 100,
    "scaleDownPods": 1,
    "scaleDownPeriod": 15,
    "scaleDownCooldown": 0,
    "floorFactor": 0,
}


# significant digits of a float parameter the search picks (a target of 0.0673 a replica, not
# 0.06728181468665898): what a person would write, and the value the trials score
SIGNIFICANT_DIGITS = 3


def significant(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """`value` to `digits` significant digits (0 and non-finite values as they are)."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def picked(p: Param, value: float) -> float:
    """A value the search picked for `p`, as the manifest carries it: a whole number for an
    integer parameter, `SIGNIFICANT_DIGITS` for a log-scale one (a value target, the step
    scale), 4 decimals for a linear one (a tolerance); kept inside the range."""
    if p.integer:
        return round(value)
    v = significant(value) if p.log else round(value, 4)
    return v if p.low <= v <= p.high else float(value)


def _inside(p: Param, value: float) -> float:
    """`value` clamped into the parameter's range (a whole number for an integer one)."""
    v = min(max(value, p.low), p.high)
    return round(v) if p.integer else float(v)


def starting_points(policy: ScalingPolicy, space: list[Param]) -> list[dict[str, float]]:
    """First trials (anchors): HPA's defaults (the hpa-default baseline, when the policy
    tracks utilization) with the policy's own targets for value metrics and further metrics
    (and its own steps, `stepScale` 1, for step scaling), inside the declared ranges; then two
    variants of it (smoothed; following the load without stabilisation or tolerance), and with
    `floorFactor` in the space the last on the learned floor at 1x. With a fitted target, the
    tuner drops `target` from them and starts its line search there."""
    bounds = {p.name: p for p in space}
    metric = policy.spec.metrics[0]
    start: dict[str, float] = {}
    for name, value in HPA_DEFAULTS.items():
        if name not in bounds:
            continue
        if name == "target" and (
            metric.target is None or metric.target.type is not TargetType.UTILIZATION
        ):
            continue
        start[name] = _inside(bounds[name], value)
    # a value target, and every further metric's, starts at the policy's own (HPA's 70 % is
    # a utilization)
    for i, other in enumerate(policy.spec.metrics):
        key = "target" if i == 0 else f"target.{other.name}"
        if key not in bounds or other.target is None or key in start:
            continue
        own = other.target.amount
        if other.target.type is TargetType.UTILIZATION:
            own *= 100
        start[key] = _inside(bounds[key], own)
    # a step-scaling policy starts at its own steps
    if "stepScale" in bounds:
        start["stepScale"] = _inside(bounds["stepScale"], 1.0)
    if not start:
        return []

    def anchor(**values: float) -> dict[str, float]:
        return start | {n: _inside(bounds[n], v) for n, v in values.items() if n in bounds}

    # following the load both ways: no scale-down window, no tolerance, so the target alone
    # sets the headroom (with a fitted target, the budget sets the target)
    follow = {"scaleDownWindow": 0, "scaleUpTolerance": 0, "scaleDownTolerance": 0}
    anchors = [
        start,
        # the same with a smoothed metric (Max over 5 minutes): usually cheaper on noisy traces
        anchor(metricWindow=300),
        anchor(**follow),
        # with a learned daily floor, the same on top of the floor at 1x (the usual day is
        # provisioned ahead; the reactive part covers the rest); without, a duplicate
        anchor(**follow, floorFactor=1.0),
    ]
    unique: list[dict[str, float]] = []
    for a in anchors:
        if a not in unique:
            unique.append(a)
    return unique


def with_margin(policy: ScalingPolicy, margin: float) -> ScalingPolicy:
    """The policy as a trial replays it on the demand raised by `margin`: its maxReplicas raised
    in proportion (the margin tests how the policy follows more load, not whether a ceiling the
    search does not tune was set for it). The manifest written keeps the user's maxReplicas."""
    if margin <= 0:
        return policy
    cap = min(math.ceil(policy.spec.max_replicas * (1.0 + margin)), MAX_REPLICAS)
    return policy.model_copy(update={"spec": policy.spec.model_copy(update={"max_replicas": cap})})


# -- the target's line search -------------------------------------------------------------------

# relative step between neighbouring values of a fitted float target (a log-scale range)
FLOAT_STEP = 0.02
# replays one fit may spend (from a start next to the boundary a fit takes 2-3)
MAX_FIT_REPLAYS = 8


class Lattice:
    """The values a fitted target can take, indexed 0..size-1 in increasing order: the whole
    numbers in an integer range; in a float range above zero, 2 % steps up and down from
    `anchor` (the policy's own target, say 0.07, is then on it exactly); 1/100ths of a float
    range that reaches zero."""

    def __init__(self, param: Param, anchor: float) -> None:
        self.param = param
        self._anchor = min(max(anchor, param.low), param.high)
        self._geometric = not param.integer and param.low > 0
        # `_first`: the whole number (integer) or the step from the anchor (geometric) at 0
        if param.integer:
            self._first = math.ceil(param.low)
            last = max(math.floor(param.high), self._first)
        elif self._geometric:
            r = math.log1p(FLOAT_STEP)
            self._first = -math.floor(math.log(self._anchor / param.low) / r + 1e-9)
            last = math.floor(math.log(param.high / self._anchor) / r + 1e-9)
        else:
            self._first, last = 0, 100 if param.high > param.low else 0
        self.size = last - self._first + 1

    def value(self, i: int) -> float:
        p = self.param
        if p.integer:
            return float(self._first + i)
        k = self._first + i
        if self._geometric:
            # the anchor as given; the others to 3 significant digits, which keeps 2 % steps
            # apart and in order (each moves at most half of the third digit, under 0.5 %)
            if k == 0:
                return self._anchor
            exact = self._anchor * (1.0 + FLOAT_STEP) ** k
            v = significant(exact)
            return v if p.low <= v <= p.high else exact
        return picked(p, p.low + (p.high - p.low) * i / 100)

    def index(self, v: float) -> int:
        p = self.param
        v = min(max(v, p.low), p.high)
        if p.integer:
            i = round(v) - self._first
        elif self._geometric:
            i = round(math.log(v / self._anchor) / math.log1p(FLOAT_STEP)) - self._first
        else:
            i = round((v - p.low) / (p.high - p.low) * 100) if p.high > p.low else 0
        return min(max(i, 0), self.size - 1)


@dataclass(frozen=True, slots=True)
class Fit:
    target: float
    hours: float
    violations: float
    replays: int


def fit_target(
    evaluate: Callable[[float], tuple[float, float]],
    param: Param,
    start: float,
    budget: float,
    max_replays: int = MAX_FIT_REPLAYS,
    bound: float = math.inf,
    anchor: float | None = None,
) -> Fit:
    """The cheapest target on `param`'s lattice whose violation minutes keep `budget`, searched
    from `start`: doubling steps up while the budget holds (down while it does not) until it
    flips, then bisection. A higher target means fewer replicas, so the boundary is where the
    cost is lowest; rounding to whole replicas makes violations only roughly monotone in the
    target, so the answer is the cheapest feasible point replayed, not the last one. With no
    feasible point within `max_replays`, the one with the fewest violations (then cost).
    `bound` is the cost to beat (the best trial's so far): a walk down stops at a point over the
    budget that already costs that much, since lower targets only cost more.
    `anchor` is the value the lattice goes through (the policy's own target; default `start`):
    every fit of a search walks the same lattice, starting wherever the best trial ended.
    `evaluate(target)` returns (capacity-hours, violation minutes)."""
    lattice = Lattice(param, start if anchor is None else anchor)
    seen: dict[int, tuple[float, float]] = {}

    def ok(i: int) -> bool:
        if i not in seen:
            seen[i] = evaluate(lattice.value(i))
        return seen[i][1] <= budget

    top = lattice.size - 1
    first = lattice.index(start)
    lo: int | None = None  # highest index known to keep the budget
    hi: int | None = None  # lowest index above it known to break it
    step = 1
    if ok(first):
        lo = first
        while lo < top and len(seen) < max_replays:
            j = min(lo + step, top)
            if not ok(j):
                hi = j
                break
            lo, step = j, step * 2
    else:
        hi = first
        while hi > 0 and len(seen) < max_replays and seen[hi][0] < bound:
            j = max(hi - step, 0)
            if ok(j):
                lo = j
                break
            hi, step = j, step * 2
    while lo is not None and hi is not None and hi - lo > 1 and len(seen) < max_replays:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    feasible = [i for i, (_, v) in seen.items() if v <= budget]
    if feasible:
        best = min(feasible, key=lambda i: (seen[i][0], -i))
    else:
        best = min(seen, key=lambda i: (seen[i][1], seen[i][0], -i))
    hours, violations = seen[best]
    return Fit(lattice.value(best), hours, violations, len(seen))


@dataclass(frozen=True, slots=True)
class DailyProfile:
    """The training part's day, for a learned floor: `counts[i]` is the median, over the
    training days, of the oracle's highest count within slot i (`slot_seconds` long, from
    00:00 UTC). `schedules(f)` turns it into one cron schedule per run of equal slots with
    `minReplicas` ceil(f x count), starting `lead_seconds` early so that replicas (or Bigtable
    nodes) are ready when the slot begins: a floor learned from the days the search sees, for
    traces whose day repeats. Built from the training part only."""

    slot_seconds: int
    lead_seconds: int
    counts: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "slotSeconds": self.slot_seconds,
            "leadSeconds": self.lead_seconds,
            "counts": list(self.counts),
        }

    def schedules(self, factor: float, low: int, high: int) -> list[dict[str, Any]]:
        """The floor at `factor` as cron schedules (minReplicas above `low`, at most `high`)."""
        n = len(self.counts)
        want = [min(high, math.ceil(factor * c - 1e-9)) for c in self.counts]
        out: list[dict[str, Any]] = []
        i = 0
        while i < n:
            j = i + 1
            while j < n and want[j] == want[i]:
                j += 1
            if want[i] > low:
                start = (i * self.slot_seconds - self.lead_seconds) % 86400
                hour, minute = divmod(start // 60, 60)
                out.append(
                    {
                        # the slot's start (ready by then), as HHMM
                        "name": "tuned-floor-{:02d}{:02d}".format(
                            *divmod(i * self.slot_seconds // 60, 60)
                        ),
                        "cron": f"{minute} {hour} * * *",
                        "timeZone": "UTC",
                        "durationSeconds": (j - i) * self.slot_seconds + self.lead_seconds,
                        "minReplicas": want[i],
                    }
                )
            i = j
        return out


def daily_profile(
    scenario: Scenario, policy: ScalingPolicy, train: Grid, slot_seconds: int = 1800
) -> DailyProfile | None:
    """The training part's `DailyProfile`, or None with fewer than two whole days of it or when
    the policy has schedules of its own (the learned floor would have to merge with them)."""
    if policy.spec.schedules or len(train) * train.step < 2 * 86400:
        return None
    b = scenario.spec.backend
    ready = b.rebalance_seconds if b.kind == "bigtable" else b.startup_seconds
    lead = min(slot_seconds, 60 * math.ceil(ready / 60))
    cap, slo, floor = scenario.model.capacity_per_replica, slo_of(scenario), scenario.model.floor
    highest: dict[tuple[int, int], int] = {}
    for k, (count, masked) in enumerate(
        zip(oracle_counts(train, cap, slo, floor), train.masked, strict=True)
    ):
        if masked:
            continue
        t = train.time(k)
        key = (int(t // 86400), int(t % 86400) // slot_seconds)
        if count > highest.get(key, -1):
            highest[key] = count
    slots = 86400 // slot_seconds
    per_slot: list[list[int]] = [[] for _ in range(slots)]
    for (_, slot), count in highest.items():
        per_slot[slot].append(count)
    if min(len(v) for v in per_slot) < 2:
        return None
    return DailyProfile(slot_seconds, lead, tuple(sorted(v)[(len(v) - 1) // 2] for v in per_slot))


# the trade-off around the tuned policy: its first target (or step scale) times these
TRADEOFF_FACTORS = (0.8, 0.9, 1.0, 1.1, 1.25)


def tradeoff_values(param: Param, best: float) -> list[float]:
    """`best` times each of TRADEOFF_FACTORS, within the parameter's range and lattice
    (whole numbers for a utilization), each value once, ascending."""
    values: list[float] = []
    for f in TRADEOFF_FACTORS:
        v = min(max(best * f, param.low), param.high) if f != 1.0 else best
        if v != best:
            v = float(picked(param, v))
        if v not in values:
            values.append(v)
    return sorted(values)


@dataclass(frozen=True, slots=True)
class TradeoffPoint:
    """One point of the trade-off: the tuned policy with only `value` changed."""

    value: float
    train: Score
    test: Score
    chosen: bool

    def to_dict(self, best: float, oracle_hours: dict[str, float]) -> dict[str, Any]:
        def part(s: Score, split: str) -> dict[str, Any]:
            d = s.to_dict(oracle_hours[split])
            # no oracleRatio when the oracle needs nothing (a part at 0 with minReplicas 0)
            return {k: d.get(k) for k in ("capacityHours", "oracleRatio", "sloViolationMinutes")}

        return {
            "value": significant(self.value, 6),
            "factor": round(self.value / best, 4) if best else None,
            "chosen": self.chosen,
            "train": part(self.train, "train"),
            "test": part(self.test, "test"),
        }


# -- worker side ---------------------------------------------------------------------------------

# Worker processes read the search's context from this module-level dict, which they inherit by
# forking after `tune` fills it (the pools use the fork start method explicitly: Python 3.14
# makes forkserver Linux's default, and a spawned worker would start with it empty).
_FORK = multiprocessing.get_context("fork")
_CTX: dict[str, Any] = {}
# how often a search waiting on its workers looks at the stop event (seconds)
_POLL_SECONDS = 0.2


class TuneInterrupted(Exception):
    """The search was stopped before any trial finished: there is nothing to report."""


def _quiet_worker() -> None:
    """Workers leave Ctrl-C to the parent (the terminal sends it to the whole process group):
    the parent decides what to keep, then terminates them. They are forked with SIGINT
    blocked, so none runs the parent's handler before it ignores the signal here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


class _Workers:
    """`n` forked worker processes (the search's context inherited through `_CTX`)."""

    def __init__(self, n: int) -> None:
        before = set(multiprocessing.active_children())
        # blocked while forking: the pool's handler thread, which forks replacements, keeps
        # the mask too
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self._pool = _FORK.Pool(n, initializer=_quiet_worker)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        self._procs = [p for p in multiprocessing.active_children() if p not in before]

    def map(self, fn: Callable[[Any], Any], jobs: list[Any], stop: threading.Event | None) -> Any:
        """`fn` over `jobs`, in order; None when `stop` is set before they all finish.
        RuntimeError when a worker died (killed, out of memory): its job would never finish."""
        pending = self._pool.map_async(fn, jobs, chunksize=1)
        while not pending.ready():
            pending.wait(_POLL_SECONDS)
            if stop is not None and stop.is_set() and not pending.ready():
                return None
            dead = [p for p in self._procs if p.exitcode is not None]
            if dead and not pending.ready():
                raise RuntimeError(
                    f"a tune worker process died (pid {dead[0].pid}, exit code "
                    f"{dead[0].exitcode}): out of memory, or killed?"
                )
        return pending.get()

    def close(self) -> None:
        """Terminate the workers (a stopped search does not wait for the replays it gave up)."""
        self._pool.terminate()
        self._pool.join()


@contextlib.contextmanager
def _workers(n: int) -> Iterator[_Workers]:
    workers = _Workers(n)
    try:
        yield workers
    finally:
        workers.close()


def _evaluate(params: dict[str, float]) -> tuple[float, float]:
    scenario: Scenario = _CTX["scenario"]
    grid: Grid = _CTX["train"]
    try:
        policy = with_margin(apply_params(_CTX["base"], params, _CTX["profile"]), _CTX["margin"])
    except SpecError:
        return float("inf"), float("inf")
    run = run_policy(scenario, policy, grid)
    s = score_run(scenario, run)
    return s.capacity_hours, s.slo_violation_minutes


def _trial(job: tuple[dict[str, float], float | None, float]) -> Fit:
    """One trial: the sampled parameters replayed as they are, or with the target fitted from
    the start given (and the cost to beat)."""
    params, start, bound = job
    fitted: Param | None = _CTX["fitted"]
    if fitted is None or start is None:
        hours, violations = _evaluate(params)
        return Fit(params.get("target", math.nan), hours, violations, 1)
    return fit_target(
        lambda t: _evaluate({**params, fitted.name: t}),
        fitted,
        start,
        _CTX["budget"],
        bound=bound,
        anchor=_CTX["fit_anchor"],
    )


def _tradeoff_point(value: float) -> tuple[Score, Score]:
    """The best policy with its first target (or step scale) set to `value`, scored on the
    training part (recorded demand, tuning resolution) and on the held-back part."""
    scenario: Scenario = _CTX["scenario"]
    params = {**_CTX["best_params"], _CTX["tradeoff_param"]: value}
    policy = apply_params(_CTX["base"], params, _CTX["profile"])
    train = score_run(scenario, run_policy(scenario, policy, _CTX["recorded_train"]))
    test = score_run(
        scenario, run_policy(scenario, policy, _CTX["test"], initial=_CTX["test_initial"])
    )
    return train, test


@dataclass(slots=True)
class TuneResult:
    scenario: Scenario
    trials: int  # that finished (fewer than requested when the search was stopped)
    # replays of the training part the search ran (a fitted target takes a few a trial)
    replays: int
    fit_target: bool
    seed: int
    policy: ScalingPolicy
    params: dict[str, float]
    train: Score
    test: Score
    baselines: dict[str, dict[str, Score]]
    oracle_hours: dict[str, float]
    budget: float
    margin: float
    # what the search scored for the best policy: the training demand x (1 + margin), which the
    # budget is compared with (the `train` score is at the recorded demand)
    searched: dict[str, float]
    train_step: float
    feasible: bool
    # The held-back part's no-violation floor (`no_violation_floor`), or None.
    floor: dict[str, float] | None = None
    # the training part's day, with `tune.dailyFloor`
    profile: DailyProfile | None = None
    # worth telling the user (which policy was tuned, a floor that could not be learned)
    notes: tuple[str, ...] = ()
    # the tuned policy with only its first target (or step scale) moved: what the SLO budget
    # costs, on the training part and on the held-back one (`tradeoff_param` names it)
    tradeoff: tuple[TradeoffPoint, ...] = ()
    tradeoff_param: str | None = None
    trials_requested: int | None = None  # None: as many as `trials`
    stopped: str | None = None  # "timeout" or "interrupted" when the search stopped early

    def to_dict(self) -> dict[str, Any]:
        doc = manifest_doc(self.policy)
        return {
            "scenario": self.scenario.name,
            "trials": self.trials,
            "trialsRequested": self.trials
            if self.trials_requested is None
            else self.trials_requested,
            **({"stopped": self.stopped} if self.stopped else {}),
            "replays": self.replays,
            "fitTarget": self.fit_target,
            "seed": self.seed,
            # (JSON has no infinity: an unlimited budget, `sloBudgetMinutes: .inf`, is null)
            "sloBudgetMinutes": round(self.budget, 4) if math.isfinite(self.budget) else None,
            "demandMargin": self.margin,
            "trainStepSeconds": self.train_step,
            "feasible": self.feasible,
            **({"noViolationFloor": self.floor} if self.floor is not None else {}),
            **({"dailyFloor": self.profile.to_dict()} if self.profile is not None else {}),
            **({"notes": list(self.notes)} if self.notes else {}),
            "best": {
                "policy": doc,
                "params": self.params,
                "train": self.train.to_dict(self.oracle_hours["train"]),
                "trainWithMargin": self.searched,
                "test": self.test.to_dict(self.oracle_hours["test"]),
            },
            "baselines": {
                name: {split: s.to_dict(self.oracle_hours[split]) for split, s in parts.items()}
                for name, parts in self.baselines.items()
            },
            **(
                {
                    "tradeoff": {
                        "parameter": self.tradeoff_param,
                        "points": [
                            p.to_dict(self.params[self.tradeoff_param], self.oracle_hours)
                            for p in self.tradeoff
                        ],
                    }
                }
                if self.tradeoff and self.tradeoff_param is not None
                else {}
            ),
        }


def no_violation_floor(scenario: Scenario, grid: Grid) -> dict[str, float] | None:
    """What perfect foresight costs on `grid` (x oracle) when a replica serves only after the
    scenario's start-up delay: no policy without violations can be cheaper. Deployments only
    (a queue absorbs load in its backlog; a Bigtable node ramps up gradually, so one node
    added early and two added late can both cover a rise: no simple bound)."""
    if scenario.spec.backend.kind != "deployment":
        return None
    lead = scenario.spec.backend.startup_seconds
    cap, slo, floor = scenario.model.capacity_per_replica, slo_of(scenario), scenario.model.floor
    total = sum(oracle_counts(grid, cap, slo, floor))  # the oracle baseline's own counts
    if total <= 0:
        return None
    held = no_violation_floor_counts(grid, cap, slo, floor, lead)
    return {"leadSeconds": lead, "oracleRatio": round(sum(held) / total, 4)}


# periods a load may repeat at (an hourly job, the day, the week), and how closely its changes
# must repeat for the tuner to suggest a forecast metric
REPEAT_PERIODS = (3600, 86400, 604800)
REPEAT_MIN_R = 0.6


def repeating_changes(grid: Grid) -> tuple[int, float] | None:
    """The period in REPEAT_PERIODS at which the load's step-to-step changes repeat best, with
    their correlation: (period seconds, r), or None below REPEAT_MIN_R, or with less than two
    periods of steps. Changes, not levels: a smooth load correlates with itself an hour later
    without its rises coming at the same time of the hour. Pairs touching a masked step (an
    outage, a long gap) are left out."""
    n = len(grid)
    change = [grid.demand[k] - grid.demand[k - 1] for k in range(1, n)]
    unmasked = [not (grid.masked[k] or grid.masked[k - 1]) for k in range(1, n)]
    best: tuple[int, float] | None = None
    for period in REPEAT_PERIODS:
        lag = round(period / grid.step)
        if lag < 1 or 2 * lag >= n:
            continue
        pairs = [
            (change[k], change[k - lag])
            for k in range(lag, len(change))
            if unmasked[k] and unmasked[k - lag]
        ]
        if len(pairs) < 2:
            continue
        now, before = zip(*pairs, strict=True)
        try:
            r = statistics.correlation(now, before)
        except statistics.StatisticsError:  # no change at all on one side
            continue
        if r >= REPEAT_MIN_R and (best is None or r > best[1]):
            best = (period, r)
    return best


def held_back_initial(scenario: Scenario, test: Grid) -> int:
    """The size a replay of the held-back part starts at: what the oracle needs at its first
    scored step (a masked step, inside an outage or a long gap, needs only the floor; the
    first steps after it would then count start-up violations no deployment would have)."""
    cap, slo, floor = scenario.model.capacity_per_replica, slo_of(scenario), scenario.model.floor
    counts = oracle_counts(test, cap, slo, floor)
    first = next((c for c, m in zip(counts, test.masked, strict=True) if not m), floor)
    return max(1, first)


# steps each part of the split needs (a replay compares each step with the one before)
MIN_PART_STEPS = 2


def _refused(field: str, what: str) -> SpecError:
    """A tune the scenario's `field` makes impossible, refused before any replay."""
    return SpecError(f"{field}: {what}", [(field, what)])


def split_grid(scenario: Scenario) -> tuple[Grid, Grid, Grid]:
    """The whole grid, its training and its held-back part; SpecError when a part is under
    MIN_PART_STEPS.

    Long gaps (not scored) are those over three median sample intervals of the training part's
    samples: the held-back part's sampling must not change how the training part is read."""
    fraction = scenario.spec.tune.train_fraction
    full = grid_of(scenario)
    train, test = full.split(fraction)
    head = scenario.trace.sliced(None, test.t0)
    if len(head) >= 2 and head.spacing() != scenario.trace.spacing():
        full = grid_of(scenario, gap_spacing=head.spacing())
        train, test = full.split(fraction)
    if min(len(train), len(test)) < MIN_PART_STEPS:
        raise _refused(
            "tune.trainFraction",
            f"{fraction:g} of the trace's {len(full)} steps of {full.step:g} s leaves "
            f"{len(train)} to train on and {len(test)} held back; each part needs "
            f"{MIN_PART_STEPS} at least (a longer trace, or a smaller stepSeconds)",
        )
    if all(train.masked):
        raise _refused(
            "tune.trainFraction",
            f"every one of the {len(train)} training steps is inside a long gap or an exclude "
            "window: nothing to score a trial on",
        )
    return full, train, test


def _unit_from_held_back(scenario: Scenario, cut: float) -> str | None:
    """A note when `utilizationUnit: auto` read the file as percent only because of values in
    the held-back part (the training part alone would read as fractions): the one file-level
    reading the tuner cannot keep from seeing it, since simulate reads the file the same way."""
    t = scenario.spec.trace
    if t.kind != "utilization" or t.utilization_unit != "auto" or t.scale != 1.0:
        return None
    assert t.recorded_replicas is not None
    per_unit = t.recorded_replicas * scenario.spec.backend.capacity_per_replica / 100.0
    trace = scenario.trace
    if max(trace.values) / per_unit <= 2.0:  # read as fractions
        return None
    head = trace.values[: trace.index_at_or_before(cut) + 1]
    if head and max(head) / per_unit > 2.0:
        return None
    return (
        "trace.utilizationUnit: auto read the file as percent because of values in the "
        "held-back part (the training part alone is at most 2): set utilizationUnit"
    )


def _train_grid(scenario: Scenario, train: Grid) -> Grid:
    t = scenario.spec.tune
    if t.max_days is not None:
        keep = int(t.max_days * 86400 / train.step)
        if keep < MIN_PART_STEPS:
            raise _refused(
                "tune.maxDays",
                f"{t.max_days:g} days is {keep} steps of {train.step:g} s; training needs "
                f"{MIN_PART_STEPS} at least",
            )
        if keep < len(train):
            cut = len(train) - keep
            train = Grid(train.time(cut), train.step, train.demand[cut:], train.masked[cut:])
    if t.max_days is not None and all(train.masked):
        raise _refused(
            "tune.maxDays",
            f"the last {t.max_days:g} days of the training part are all inside long gaps or "
            "exclude windows: nothing to score a trial on",
        )
    coarse = train.decimated(t.decimate)
    if len(coarse) < MIN_PART_STEPS:
        raise _refused(
            "tune.decimate",
            f"{t.decimate} turns the {len(train)} training steps into {len(coarse)}; "
            f"training needs {MIN_PART_STEPS} at least",
        )
    if not any(d > 0 for d, m in zip(coarse.demand, coarse.masked, strict=True) if not m):
        # every target keeps any budget there: the search would pick the highest it may
        raise _refused(
            "tune.maxDays" if t.max_days is not None else "tune.trainFraction",
            "the training part has no load at any scored step: nothing to tune against",
        )
    return coarse


def tune(
    scenario: Scenario,
    *,
    trials: int = 100,
    seed: int = 0,
    jobs: int = 2,
    progress: bool = False,
    policy_index: int = 0,
    tradeoff: bool = True,
    timeout: float | None = None,
    stop: threading.Event | None = None,
) -> TuneResult:
    """Search the policy's parameters (`trials` trials, `jobs` workers, seeded).

    `timeout` (seconds from the call): start no batch of trials after it (the running ones
    finish; at least one batch runs; the final scores and the trade-off come on top). `stop`:
    once set, the search drops the batch in progress and finishes with the trials done, without
    the trade-off; TuneInterrupted when none had finished. Either way a note says so, `stopped`
    says why, and `trials` in the result counts the trials that finished."""
    started = time.monotonic()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = scenario.policies[policy_index]
    full, train_full, test = split_grid(scenario)
    train = _train_grid(scenario, train_full)
    profile = daily_profile(scenario, base, train_full) if scenario.spec.tune.daily_floor else None
    space = search_space(base, scenario.spec.tune.space, daily_floor=profile is not None)
    notes: list[str] = []
    if len(scenario.policies) > 1:
        notes.append(
            f"the scenario has {len(scenario.policies)} policies; tuning "
            f"{base.metadata.name} (number {policy_index + 1})"
        )
    if scenario.spec.tune.daily_floor and profile is None:
        notes.append(
            "tune.dailyFloor: no floor learned ("
            + (
                "the policy has schedules of its own"
                if base.spec.schedules
                else "the training part has fewer than two whole days"
            )
            + "); searching without it"
        )
    repeats = repeating_changes(train_full)
    if repeats is not None and not any(m.offset_seconds for m in base.spec.metrics):
        period, r = repeats
        notes.append(
            f"the training part's load changes repeat every {span(period)} (correlation "
            f"{r:.2f} with the changes {span(period)} earlier): a forecast metric, read "
            f"{span(period)} back less its horizon (offsetSeconds), may provision ahead of "
            "them (docs/metrics.md)"
        )
    unit_note = _unit_from_held_back(scenario, test.t0)
    if unit_note:
        notes.append(unit_note)
    if all(test.masked):
        notes.append(
            "the held-back part is all inside long gaps or exclude windows: its scores count "
            "no violations and say little"
        )
    if base.spec.mode.value != "Active":
        notes.append(
            f"the policy's spec.mode is {base.spec.mode.value}: it is tuned as if Active, and "
            "the manifest written keeps the mode"
        )
    margin = scenario.spec.tune.demand_margin
    test_initial = held_back_initial(scenario, test)

    # baselines on exactly the grids the tuned policy is scored on
    hpa = hpa_default_policy(scenario, full)
    hpa_train = score_run(scenario, run_policy(scenario, hpa, train, kind="baseline"))
    # the trials' training demand, raised by the margin; the default budget is what
    # hpa-default violates on that same demand
    stressed = train.scaled(1.0 + margin)
    budget = scenario.spec.tune.slo_budget_minutes
    if budget is None:
        hpa_stressed = (
            score_run(scenario, run_policy(scenario, hpa, stressed, kind="baseline"))
            if margin > 0
            else hpa_train
        )
        hpa_minutes = hpa_stressed.slo_violation_minutes
        budget = hpa_minutes * scenario.spec.tune.slo_budget_factor
        # violations come in whole steps: below one step the factor would allow none at all
        # where hpa-default has some (often the unavoidable start-up), so no trial could keep
        # it; the budget is then one step (still no more than hpa-default's)
        step_minutes = stressed.step / 60.0
        if 0 < budget < step_minutes <= hpa_minutes:
            budget = step_minutes

    # the fitted target is not sampled: each trial's line search starts from the best
    # feasible trial's fitted target so far (else the starting points')
    fitted = (
        next((p for p in space if p.name == "target"), None)
        if scenario.spec.tune.fit_target
        else None
    )
    starts = starting_points(base, space)
    sampled = [p for p in space if p is not fitted]
    start_target: float | None = None
    if fitted is not None:
        start_target = starts[0]["target"] if starts else (fitted.low + fitted.high) / 2
        starts = [{k: v for k, v in st.items() if k != "target"} for st in starts]

    _CTX.update(
        scenario=scenario,
        train=stressed,
        base=base,
        margin=margin,
        budget=budget,
        fitted=fitted,
        fit_anchor=start_target,
        profile=profile,
    )

    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    for start in starts:
        study.enqueue_trial(start, skip_if_exists=True)
    bar = None
    if progress:
        from tqdm import tqdm  # type: ignore[import-untyped]

        bar = tqdm(total=trials, desc=f"tune {scenario.name}", unit="trial")
    workers = max(1, min(jobs, os.cpu_count() or 1))
    stopped: str | None = None
    if stop is not None and stop.is_set():  # during the baselines: no pool to fork
        raise TuneInterrupted("the search was stopped before any trial finished")
    with contextlib.ExitStack() as resources:
        # a stoppable search runs its trials in workers even with one job, so Ctrl-C does not
        # wait for a trial's replays to finish
        pool = (
            resources.enter_context(_workers(workers)) if workers > 1 or stop is not None else None
        )
        if bar is not None:
            resources.callback(bar.close)
        done = replays = 0
        while done < trials:
            if stop is not None and stop.is_set():
                stopped = "interrupted"
                break
            if timeout is not None and done and time.monotonic() - started >= timeout:
                stopped = "timeout"
                break
            batch = [study.ask() for _ in range(min(workers, trials - done))]
            jobs_list: list[tuple[dict[str, float], float | None, float]] = []
            kept = [t for t in study.trials if t.user_attrs.get("excess", 1.0) <= 0]
            bound = math.inf
            if fitted is not None and kept:
                leader = min(kept, key=lambda t: (t.value, t.number))
                start_target = leader.user_attrs["target"]
                bound = math.inf if leader.value is None else float(leader.value)
            for trial in batch:
                params: dict[str, float] = {}
                for p in sampled:
                    if p.integer:
                        params[p.name] = trial.suggest_int(
                            p.name, int(p.low), int(p.high), log=p.log and p.low > 0
                        )
                    else:
                        params[p.name] = picked(
                            p, trial.suggest_float(p.name, p.low, p.high, log=p.log and p.low > 0)
                        )
                jobs_list.append((params, start_target, bound))
            fits = (
                pool.map(_trial, jobs_list, stop)
                if pool is not None
                else [_trial(job) for job in jobs_list]
            )
            if fits is None:  # stopped: the batch's trials are dropped, never told
                stopped = "interrupted"
                break
            for trial, fit in zip(batch, fits, strict=True):
                trial.set_user_attr("violationMinutes", fit.violations)
                trial.set_user_attr("excess", fit.violations - budget)
                trial.set_user_attr("replays", fit.replays)
                if fitted is not None:
                    trial.set_user_attr("target", fit.target)
                trial.set_constraint("slo", fit.violations - budget)
                study.tell(trial, fit.hours)
                replays += fit.replays
            done += len(batch)
            if bar is not None:
                bar.update(len(batch))

    if stopped is not None:  # (a stop after the last batch is the trade-off's business)
        if done == 0:
            raise TuneInterrupted("the search was stopped before any trial finished")
        notes.append(
            f"the search stopped after {done} of {trials} trials ("
            + (
                "interrupted"
                if stopped == "interrupted"
                else f"the time limit of {timeout:g} s; the trials running then finished"
            )
            + "): the best is the best of those"
        )
    finished = [t for t in study.trials if t.value is not None]
    feasible = [t for t in finished if t.user_attrs["excess"] <= 0]
    if feasible:
        best = min(feasible, key=lambda t: (t.value, t.number))
    else:
        best = min(finished, key=lambda t: (t.user_attrs["excess"], t.value, t.number))
    bounds = {p.name: p for p in space}
    # as the trial replayed them (optuna keeps the value it suggested, before `picked`)
    params = {k: picked(bounds[k], v) if k in bounds else v for k, v in best.params.items()}
    if fitted is not None:
        t = float(best.user_attrs["target"])
        params = {"target": int(t) if fitted.integer else t, **params}
    best_hours = best.value
    assert best_hours is not None  # `finished` keeps trials with a value
    policy = apply_params(base, params, profile)
    # (the manifest, not a dump: a namespace the user did not write stays unwritten)
    meta = manifest_doc(policy)
    meta["metadata"].setdefault("annotations", {})
    meta["metadata"]["annotations"]["gemini.dev/tuned-on"] = scenario.name
    policy = parse_policy(meta)

    # final scores: train at the tuning resolution, test (held back) at full resolution
    train_s = score_run(scenario, run_policy(scenario, policy, train))
    test_s = score_run(scenario, run_policy(scenario, policy, test, initial=test_initial))
    hpa_test = score_run(
        scenario, run_policy(scenario, hpa, test, initial=test_initial, kind="baseline")
    )
    oracle_train = score_run(scenario, baseline_runs(scenario, train, ["oracle"])[0])
    oracle_test = score_run(scenario, baseline_runs(scenario, test, ["oracle"])[0])

    # the trade-off: the same policy with its first target (or step scale) moved
    knob = next((p for p in space if p.name in ("target", "stepScale")), None)
    points: list[TradeoffPoint] = []
    # skipped once stopped: during the search, while the best was scored, or while it runs
    interrupted = stopped == "interrupted" or (stop is not None and stop.is_set())
    if not interrupted and tradeoff and knob is not None and knob.name in params:
        chosen = float(params[knob.name])
        values = [v for v in tradeoff_values(knob, chosen) if v != chosen]
        _CTX.update(
            best_params=params,
            tradeoff_param=knob.name,
            recorded_train=train,
            test=test,
            test_initial=test_initial,
        )
        scored: list[tuple[Score, Score]] | None
        if (workers > 1 or stop is not None) and values:
            with _workers(min(workers, len(values))) as points_pool:
                scored = points_pool.map(_tradeoff_point, values, stop)
        else:
            scored = [_tradeoff_point(v) for v in values]
        if scored is None:
            interrupted = True
        else:
            points = [
                TradeoffPoint(v, tr, te, False) for v, (tr, te) in zip(values, scored, strict=True)
            ]
            points.append(TradeoffPoint(chosen, train_s, test_s, True))
            points.sort(key=lambda p: p.value)
    if interrupted:
        stopped = "interrupted"
        notes.append("the trade-off was skipped: the tune was interrupted")
    return TuneResult(
        scenario=scenario,
        trials=done,
        trials_requested=trials,
        stopped=stopped,
        replays=replays,
        fit_target=fitted is not None,
        seed=seed,
        policy=policy,
        params={k: float(v) for k, v in params.items()},
        train=train_s,
        test=test_s,
        baselines={
            "hpa-default": {"train": hpa_train, "test": hpa_test},
            "oracle": {"train": oracle_train, "test": oracle_test},
        },
        oracle_hours={
            "train": oracle_train.capacity_hours,
            "test": oracle_test.capacity_hours,
        },
        budget=budget,
        margin=margin,
        searched={
            "capacityHours": round(best_hours, 4),
            "sloViolationMinutes": float(best.user_attrs["violationMinutes"]),
        },
        train_step=train.step,
        feasible=bool(feasible),
        floor=no_violation_floor(scenario, test),
        profile=profile,
        notes=tuple(notes),
        tradeoff=tuple(points),
        tradeoff_param=knob.name if points and knob is not None else None,
    )


def manifest_doc(policy: ScalingPolicy) -> dict[str, Any]:
    """The policy as a manifest: no status, no empty labels or annotations, and no namespace
    unless the user's manifest has one (`kubectl apply -n prod` refuses a manifest that says
    `namespace: default`)."""
    doc = policy.model_dump(by_alias=True, exclude_none=True, mode="json")
    doc.pop("status", None)
    meta = doc.get("metadata", {})
    if "namespace" not in policy.metadata.model_fields_set:
        meta.pop("namespace", None)
    for key in ("labels", "annotations"):
        if not meta.get(key):
            meta.pop(key, None)
    return doc


def manifest_yaml(policy: ScalingPolicy) -> str:
    """The manifest as YAML, ready for `kubectl apply` (and `gemini validate`)."""
    return yaml.safe_dump(manifest_doc(policy), sort_keys=False)
