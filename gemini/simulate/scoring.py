"""Scores of a run and the baselines (oracle, static-peak, hpa-default).

Owns the definitions of capacity-hours, cost, SLO-violation minutes, scale events, flaps and time
to recover, and the baseline policies. Pure arithmetic over `Run` records; must not import
`gemini.metrics`, `gemini.scalers` or I/O libraries.

- A step violates the SLO when load > ready capacity x `slo.maxUtilization`; for a queue with
  `slo.maxAgeSeconds`, also when the oldest unacked message is older than that. (So the oracle
  stays a lower bound for every backend.)
- Capacity-hours count provisioned units (starting pods and ramping nodes are paid for).
- A flap is a scale event in the opposite direction of the previous one within the flap window.
- Recovery: the length of each run of violating steps (from overload to back within the SLO).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from gemini.simulate.replay import Grid, Run


@dataclass(frozen=True, slots=True)
class Slo:
    max_utilization: float = 0.9
    max_age_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Score:
    name: str
    kind: str
    capacity_hours: float
    cost: float | None
    slo_violation_minutes: float
    slo_violation_share: float
    scale_events: int
    flaps: int
    max_replicas: int
    mean_replicas: float
    mean_recovery_seconds: float | None
    max_recovery_seconds: float | None

    def to_dict(self, oracle_hours: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "capacityHours": _kept(self.capacity_hours, 4),
            "cost": None if self.cost is None else _kept(self.cost, 4),
            "sloViolationMinutes": _kept(self.slo_violation_minutes, 4),
            "sloViolationShare": _kept(self.slo_violation_share, 6),
            "scaleEvents": self.scale_events,
            "flaps": self.flaps,
            "maxReplicas": self.max_replicas,
            "meanReplicas": _kept(self.mean_replicas, 4),
            "meanRecoverySeconds": _r(self.mean_recovery_seconds),
            "maxRecoverySeconds": _r(self.max_recovery_seconds),
        }
        if oracle_hours:
            out["oracleRatio"] = round(self.capacity_hours / oracle_hours, 4)
        return out


def _kept(x: float, ndigits: int) -> float:
    """`round(x, ndigits)`, except that a value other than zero never rounds to zero: it
    keeps three significant digits (a violation of a few milliseconds, on a millisecond grid,
    is still a violation, and its run must not read as one that meets the SLO)."""
    r = round(x, ndigits)
    if r == 0 and x != 0:
        return float(f"{x:.3g}")
    return r


def _r(x: float | None) -> float | None:
    return None if x is None else _kept(x, 3)


# A step is overloaded when load > capacity x maxUtilization x (1 + _REL): a relative margin for
# float noise only, so any load above zero capacity overloads, at 1e-9 load/s as at 1e9. The oracle
# uses the very same test, so it is the least capacity that does not violate.
_REL = 1e-9


def overloaded(load: float, capacity: float, max_utilization: float) -> bool:
    return load > capacity * max_utilization * (1.0 + _REL)


def violations(run: Run, slo: Slo) -> list[bool]:
    grid = run.grid
    u = slo.max_utilization
    masked = grid.masked
    over = [
        overloaded(d, c, u) and not m
        for d, c, m in zip(grid.demand, run.ready_capacity, masked, strict=True)
    ]
    if run.age is not None and slo.max_age_seconds is not None:
        limit = slo.max_age_seconds
        return [o or (a > limit and not m) for o, a, m in zip(over, run.age, masked, strict=True)]
    return over


def score(run: Run, slo: Slo, *, price: float | None = None, flap_window: float = 600.0) -> Score:
    grid = run.grid
    n = len(grid)
    step = grid.step
    total = sum(run.count)
    hours = total * step / 3600.0
    bad = violations(run, slo)
    bad_steps = sum(bad)
    episodes: list[float] = []
    length = 0
    for b in bad:
        if b:
            length += 1
        elif length:
            episodes.append(length * step)
            length = 0
    if length:
        episodes.append(length * step)
    flaps = 0
    last: tuple[float, int] | None = None
    for at, change in run.events:
        if last is not None and (change > 0) != (last[1] > 0) and at - last[0] <= flap_window:
            flaps += 1
        last = (at, change)
    return Score(
        name=run.name,
        kind=run.kind,
        capacity_hours=hours,
        cost=None if price is None else hours * price,
        slo_violation_minutes=bad_steps * step / 60.0,
        slo_violation_share=bad_steps / n if n else 0.0,
        scale_events=len(run.events),
        flaps=flaps,
        max_replicas=max(run.count) if run.count else 0,
        mean_replicas=total / n if n else 0.0,
        mean_recovery_seconds=sum(episodes) / len(episodes) if episodes else None,
        max_recovery_seconds=max(episodes) if episodes else None,
    )


def units_needed(load: float, capacity_per_unit: float, slo: Slo, floor: int = 0) -> int:
    """The least units (at least `floor`) whose capacity is not `overloaded` by `load`."""
    u = slo.max_utilization
    # The estimate from the same margin is off by a unit at most (float rounding): the loops
    # below only correct that, whatever the load's magnitude.
    n = max(floor, math.ceil(load / (capacity_per_unit * u * (1.0 + _REL))))
    while n > floor and not overloaded(load, (n - 1) * capacity_per_unit, u):
        n -= 1
    while overloaded(load, n * capacity_per_unit, u):
        n += 1
    return n


# `oracle_counts` is pure, and one `gemini simulate` asks for it about five times on the same
# grid (the oracle, static-peak, hpa-default's maxReplicas, the warnings): 0.34 s each on the
# 62 days of NASA. The last few results, by grid identity (the entry holds the grid, so its id
# is not reused while the entry lives).
_ORACLE_MEMO: dict[tuple[int, float, Slo, int], tuple[Grid, tuple[int, ...]]] = {}


def oracle_counts(grid: Grid, capacity_per_unit: float, slo: Slo, floor: int = 0) -> list[int]:
    """The least capacity with load <= capacity x maxUtilization at every scored step (no lag).

    A masked step (inside a long gap or an excluded window) is not scored, so no run violates
    there: the oracle needs only the backend's floor, and stays a lower bound on the cost of every
    run without violations."""
    key = (id(grid), capacity_per_unit, slo, floor)
    hit = _ORACLE_MEMO.get(key)
    if hit is not None and hit[0] is grid:
        return list(hit[1])
    counts = [
        floor if m else units_needed(d, capacity_per_unit, slo, floor)
        for d, m in zip(grid.demand, grid.masked, strict=True)
    ]
    if len(_ORACLE_MEMO) >= 8:
        _ORACLE_MEMO.clear()
    _ORACLE_MEMO[key] = (grid, tuple(counts))
    return counts


def _events(grid: Grid, counts: list[int]) -> list[tuple[float, int]]:
    out = []
    for k in range(1, len(counts)):
        if counts[k] != counts[k - 1]:
            out.append((grid.time(k), counts[k] - counts[k - 1]))
    return out


def oracle_run(grid: Grid, capacity_per_unit: float, slo: Slo, floor: int = 0) -> Run:
    counts = oracle_counts(grid, capacity_per_unit, slo, floor)
    ready = [c * capacity_per_unit for c in counts]
    age = [0.0] * len(counts) if slo.max_age_seconds is not None else None
    return Run("oracle", "baseline", grid, counts, ready, age, _events(grid, counts))


def lead_floor_counts(oracle: list[int], step: float, lead_seconds: float) -> list[int]:
    """The least capacity any policy without violations must pay when a unit serves only
    `lead_seconds` after it is created (and capacity is counted from creation): a unit needed
    at step k exists from k - lead, so at step j at least max(oracle[j .. j + lead/step]) units
    exist. A lower bound even with perfect foresight (not a policy: it never violates)."""
    ahead = int(lead_seconds / step + 1e-9) if step > 0 else 0
    if ahead <= 0:
        return list(oracle)
    out: list[int] = []
    window: deque[int] = deque()  # indexes of decreasing values: a sliding-window maximum
    n = len(oracle)
    nxt = 0
    for j in range(n):
        while nxt < n and nxt <= j + ahead:
            while window and oracle[window[-1]] <= oracle[nxt]:
                window.pop()
            window.append(nxt)
            nxt += 1
        while window[0] < j:
            window.popleft()
        out.append(oracle[window[0]])
    return out


def no_violation_floor_counts(
    grid: Grid, capacity_per_unit: float, slo: Slo, floor: int, lead_seconds: float
) -> list[int]:
    """`lead_floor_counts` of the oracle on `grid`, where a masked step (not scored) needs only
    the backend's floor: a run that leaves it short does not violate there."""
    return lead_floor_counts(
        oracle_counts(grid, capacity_per_unit, slo, floor), grid.step, lead_seconds
    )


def static_peak_run(grid: Grid, capacity_per_unit: float, slo: Slo, floor: int = 0) -> Run:
    peak = max(oracle_counts(grid, capacity_per_unit, slo, floor), default=floor)
    n = len(grid)
    age = [0.0] * n if slo.max_age_seconds is not None else None
    return Run("static-peak", "baseline", grid, [peak] * n, [peak * capacity_per_unit] * n, age, [])


def hpa_default_manifest(backend_kind: str, max_replicas: int) -> dict[str, Any]:
    """HPA v2 with its defaults (15 s sync, 0.1 tolerance, 300 s scale-down window, default
    rate policies) tracking utilization at 70 %: a real ScalingPolicy run through the engine."""
    if backend_kind == "bigtable":
        target: dict[str, Any] = {
            "bigtable": {"project": "sim", "instance": "sim", "cluster": "sim"}
        }
        source: dict[str, Any] = {
            "bigtable": {"project": "sim", "instance": "sim", "cluster": "sim"}
        }
    else:
        target = {"kubernetes": {"name": "sim"}}
        source = {
            "cloudMonitoring": {
                "project": "sim",
                "filter": 'metric.type = "gemini.dev/simulated/utilization"',
            }
        }
    return {
        "apiVersion": "autoscaling.gemini.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": "hpa-default"},
        "spec": {
            "target": target,
            "minReplicas": 1,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "name": "utilization",
                    "source": source,
                    "target": {"type": "Utilization", "averageUtilization": 70},
                }
            ],
        },
    }
