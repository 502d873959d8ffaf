"""Run a whole scenario: every policy and baseline on the same grid and model; the JSON result.

Owns wiring a `Scenario` into replays and scores (used by `gemini simulate`, the tuner and the
suite). Must not import network or database libraries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gemini.policy.decision import Decision
from gemini.policy.spec import MAX_REPLICAS, Mode, ScalingPolicy, parse_policy
from gemini.simulate.replay import Grid, Run, make_grid, replay
from gemini.simulate.scenario import Scenario, observable_for
from gemini.simulate.scoring import (
    Score,
    Slo,
    hpa_default_manifest,
    oracle_counts,
    oracle_run,
    score,
    static_peak_run,
)


def slo_of(scenario: Scenario) -> Slo:
    s = scenario.spec.slo
    return Slo(s.max_utilization, s.max_age_seconds)


def grid_of(
    scenario: Scenario, step: float | None = None, gap_spacing: float | None = None
) -> Grid:
    """The replay grid: the scenario's step (`stepSeconds`, default 15 s, HPA's sync period;
    see `scenario.replay_step`); `gap_spacing` as in `make_grid`, unless the scenario sets
    `trace.maxGapSeconds`."""
    return make_grid(
        scenario.trace,
        step or scenario.step,
        scenario.exclude,
        gap_spacing,
        scenario.spec.trace.max_gap_seconds,
    )


BASELINE_ANNOTATION = "gemini.dev/simulator-baseline"


def mapping_for(scenario: Scenario, policy: ScalingPolicy) -> dict[str, str]:
    if policy.metadata.annotations.get(BASELINE_ANNOTATION) == "hpa-default":
        # the baseline always tracks utilization, whatever `observe:` says for the user's
        # metrics (which may share its metric name)
        return {m.name: "utilization" for m in policy.spec.metrics}
    return {m.name: observable_for(scenario.spec, m) for m in policy.spec.metrics}


def store_key(scenario: Scenario, name: str) -> str:
    """Where `gemini simulate --db` records a replayed policy: namespace `sim`, name
    `<scenario>-<policy>` (baselines too: `sim/nasa-web-hpa-default`), so runs of different
    scenarios appear as their own policies and never merge with production ones."""
    return f"sim/{scenario.name}-{name}"


def acting(policy: ScalingPolicy) -> ScalingPolicy:
    """The policy as the replay runs it: `spec.mode` Shadow or Paused would only replay the
    initial size, so a simulated policy always acts (its manifest is unchanged)."""
    if policy.spec.mode is Mode.ACTIVE:
        return policy
    return policy.model_copy(update={"spec": policy.spec.model_copy(update={"mode": Mode.ACTIVE})})


def hpa_default_policy(scenario: Scenario, grid: Grid) -> ScalingPolicy:
    cap = scenario.spec.max_replicas
    if cap is None:
        peak = max(oracle_counts(grid, scenario.model.capacity_per_replica, slo_of(scenario)))
        highest = [p.spec.max_replicas for p in scenario.policies]
        # within the int32 a manifest allows (a trace of billions per second on small replicas)
        cap = min(max([2 * peak + 1, 10, *highest]), MAX_REPLICAS)
    doc = hpa_default_manifest(scenario.spec.backend.kind, cap)
    doc["metadata"]["annotations"] = {BASELINE_ANNOTATION: "hpa-default"}
    return parse_policy(doc)


def run_policy(
    scenario: Scenario,
    policy: ScalingPolicy,
    grid: Grid,
    *,
    initial: int | None = None,
    on_decision: Callable[[Decision], None] | None = None,
    kind: str = "policy",
    progress: Callable[[int], None] | None = None,
) -> Run:
    m = scenario.spec.metrics
    start = scenario.model.initial if initial is None else initial
    if start == 0 and policy.spec.min_replicas > 0:
        # the engine (as HPA) leaves a workload scaled to 0 by hand alone when minReplicas > 0;
        # a scenario that starts at 0 is not that, so such a policy starts at one replica
        start = 1
    return replay(
        acting(policy),
        grid,
        scenario.model,
        mapping_for(scenario, policy),
        delay_seconds=m.delay_seconds,
        sample_seconds=m.sample_seconds,
        initial=start,
        on_decision=on_decision,
        kind=kind,
        progress=progress,
    )


def score_run(scenario: Scenario, run: Run) -> Score:
    return score(
        run,
        slo_of(scenario),
        price=scenario.spec.backend.price_per_replica_hour,
        flap_window=scenario.spec.flap_window_seconds,
    )


def baseline_runs(
    scenario: Scenario,
    grid: Grid,
    names: list[str] | None = None,
    *,
    initial: int | None = None,
    on_decision: Callable[[Decision], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Run]:
    names = list(scenario.spec.baselines) if names is None else names
    slo = slo_of(scenario)
    cap = scenario.model.capacity_per_replica
    floor = scenario.model.floor
    out: list[Run] = []
    for name in names:
        if name == "oracle":
            out.append(oracle_run(grid, cap, slo, floor))
        elif name == "static-peak":
            out.append(static_peak_run(grid, cap, slo, floor))
        elif name == "hpa-default":
            pol = hpa_default_policy(scenario, grid)
            out.append(
                run_policy(
                    scenario,
                    pol,
                    grid,
                    initial=initial,
                    on_decision=on_decision,
                    kind="baseline",
                    progress=progress,
                )
            )
    return out


@dataclass(slots=True)
class Outcome:
    scenario: Scenario
    grid: Grid
    runs: list[Run]
    scores: list[Score]
    wall_seconds: float

    @property
    def scenario_slo(self) -> Slo:
        return slo_of(self.scenario)

    @property
    def oracle_hours(self) -> float:
        oracle = oracle_run(
            self.grid,
            self.scenario.model.capacity_per_replica,
            slo_of(self.scenario),
            self.scenario.model.floor,
        )
        return score_run(self.scenario, oracle).capacity_hours

    def to_dict(self) -> dict[str, Any]:
        grid = self.grid
        oh = self.oracle_hours
        return {
            "scenario": self.scenario.name,
            "steps": len(grid),
            "stepSeconds": grid.step,
            "simulatedHours": round(len(grid) * grid.step / 3600.0, 4),
            "wallSeconds": round(self.wall_seconds, 3),
            "oracleCapacityHours": round(oh, 4),
            "results": [s.to_dict(oh) for s in self.scores],
        }


def simulate(
    scenario: Scenario,
    *,
    on_decision: Callable[[Decision], None] | None = None,
    step: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Outcome:
    """Every policy, then every baseline, on one grid. `progress(done, total)`: steps replayed
    so far and in all (the policies and `hpa-default`; the other baselines are computed
    directly), every few thousand steps."""
    started = time.perf_counter()
    grid = grid_of(scenario, step)
    advance: Callable[[int], None] | None = None
    if progress is not None:
        replayed = len(scenario.policies) + ("hpa-default" in scenario.spec.baselines)
        total, done = replayed * len(grid), 0
        report = progress

        def advance(steps: int) -> None:
            nonlocal done
            done += steps
            report(done, total)

    runs: list[Run] = []
    for policy in scenario.policies:
        runs.append(run_policy(scenario, policy, grid, on_decision=on_decision, progress=advance))
    runs.extend(baseline_runs(scenario, grid, on_decision=on_decision, progress=advance))
    scores = [score_run(scenario, r) for r in runs]
    return Outcome(scenario, grid, runs, scores, time.perf_counter() - started)
