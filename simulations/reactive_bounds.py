"""How cheap can a reactive policy be on a scenario's held-back part? Prints a Markdown table.

.venv/bin/python simulations/reactive_bounds.py simulations/nasa-web.yaml

Computed directly on the replay grid (no engine), on the part `gemini tune` holds back. These are
reference points, not proofs:

- the oracle, and the oracle holding each step's capacity for the next L seconds. With a start-up
  of L seconds even perfect foresight pays for this: a replica that serves at t must exist from
  t - L (capacity-hours count starting replicas), so "holding 120 s" is the oracle with the
  scenario's start-up delay;
- an idealised reactive rule: it sees the true demand `lag` seconds late (metric delay plus half
  the sampling interval), provisions for the Max over the last W seconds plus `headroom`, and
  new replicas serve `startupSeconds` later (scale-down is instant). It shows the trade-off
  between cost and violations that a policy without foresight faces; tuned engine policies
  (asymmetric: fast up, slow down) can do somewhat better than this simple family.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from gemini.simulate.runner import grid_of, hpa_default_policy, run_policy, score_run
from gemini.simulate.scenario import load_scenario
from gemini.simulate.scoring import lead_floor_counts


def main(argv: list[str]) -> int:
    sc = load_scenario(Path(argv[0]))
    full = grid_of(sc)
    _, test = full.split(sc.spec.tune.train_fraction)
    step = test.step
    per = sc.model.capacity_per_replica * sc.spec.slo.max_utilization
    floor = sc.model.floor
    demand, masked = test.demand, test.masked
    n = len(demand)
    oracle = [max(floor, math.ceil(x / per - 1e-9)) for x in demand]
    oracle_hours = sum(oracle) * step / 3600

    def score(counts: list[int], ready: list[int]) -> tuple[float, float]:
        bad = sum(1 for k in range(n) if not masked[k] and demand[k] > ready[k] * per + 1e-9)
        return sum(counts) * step / 3600 / oracle_hours, bad * step / 60

    def window_max(values: list[int] | list[float], back: int, ahead: int) -> list[float]:
        return [max(values[max(0, k - back) : k + ahead + 1]) for k in range(n)]

    print(f"## {sc.name}: held-back part, {n} steps of {step:g} s\n")
    print("| run | x oracle | violation min |")
    print("| --- | ---: | ---: |")
    hpa = hpa_default_policy(sc, full)
    s = score_run(sc, run_policy(sc, hpa, test, initial=max(1, oracle[0]), kind="baseline"))
    print(
        f"| hpa-default (engine) | {s.capacity_hours / oracle_hours:.3f} | "
        f"{s.slo_violation_minutes:.0f} |"
    )
    for hold in (0, 120, 210, 300):
        held = lead_floor_counts(oracle, step, hold)
        print(f"| oracle holding capacity {hold} s | {score(held, held)[0]:.3f} | 0 |")
    startup = sc.spec.backend.startup_seconds
    lag = sc.spec.metrics.delay_seconds + sc.spec.metrics.sample_seconds / 2
    sk, lk = int(startup / step), int(lag / step)
    for window in (15, 300, 600, 1200):
        seen = window_max(list(demand), max(0, int(window / step) - 1), 0)
        for headroom in (0.0, 0.15, 0.3, 0.5):
            want = [
                max(floor, math.ceil(seen[max(0, k - lk)] * (1 + headroom) / per - 1e-9))
                for k in range(n)
            ]
            ready = [min(want[max(0, k - sk) : k + 1]) for k in range(n)]
            ratio, viol = score(want, ready)
            print(
                f"| reactive: lag {lag:g} s, start-up {startup:g} s, Max over {window} s, "
                f"headroom {headroom:.0%} | {ratio:.3f} | {viol:.0f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
