"""Micro-benchmark of `gemini.policy.engine.decide()` on one core.

Case of record: a two-metric policy with HPA's default behavior and a full window of history
(300 s scale-down window at 15 s: 20 recommendations made, of which the state keeps the 7 a
window can still pick; plus recent scale events), evaluated as the next 15 s tick. Baselines measured in the same run: a bare HPA-formula function (what a
minimal autoscaler does per tick) and the per-metric formula gemini uses.

Prints a Markdown table and exits 0. Usage: python benchmarks/bench_decide.py [--seconds S]
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gemini.policy import replicas
from gemini.policy.decision import Capacity
from gemini.policy.engine import decide
from gemini.policy.spec import Spec, parse_policy
from gemini.policy.state import PolicyState
from gemini.series import Observation

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PROM = {"prometheus": {"serverAddress": "http://prom:9090", "query": "up"}}


def make_spec(**extra: Any) -> Spec:
    return parse_policy(
        {
            "apiVersion": "autoscaling.gemini.dev/v1alpha1",
            "kind": "ScalingPolicy",
            "metadata": {"name": "bench", "namespace": "default"},
            "spec": {
                "target": {"kubernetes": {"name": "web"}},
                "minReplicas": 2,
                "maxReplicas": 200,
                "metrics": [
                    {
                        "name": "rps",
                        "source": PROM,
                        "target": {"type": "AverageValue", "averageValue": 100},
                    },
                    {
                        "name": "cpu",
                        "source": PROM,
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                ],
                **extra,
            },
        }
    ).spec


def warm_history(spec: Spec) -> tuple[PolicyState, int, datetime]:
    """Run 40 ticks (10 minutes) of a varying load so the windows are full."""
    state, current, now = PolicyState(), 10, T0
    for i in range(40):
        now = T0 + timedelta(seconds=15 * i)
        load = 1000 + 600 * math.sin(i / 3)
        obs = [Observation.of("rps", now, load), Observation.of("cpu", now, load / current / 140)]
        decision, state = decide(spec, state, obs, Capacity(current=current), now)
        if decision.desired != current:
            state = state.with_scale_event(now, current, decision.desired)
            current = decision.desired
    now += timedelta(seconds=15)
    # two scale events inside the 15 s rate period, so the period sums have work to do
    state = state.with_scale_event(now - timedelta(seconds=14), current - 2, current - 1)
    state = state.with_scale_event(now - timedelta(seconds=7), current - 1, current)
    return state, current, now


def hpa_formula(current: int, value: float, target: float, tolerance: float = 0.1) -> int:
    """The bare HPA formula for one metric: the baseline."""
    ratio = value / target
    if abs(ratio - 1.0) <= tolerance:
        return current
    return math.ceil(current * ratio)


def measure(fn: Callable[[], object], seconds: float) -> tuple[int, float]:
    """(calls, best seconds per call) over five rounds of about seconds/5 each."""
    n = 1
    while True:  # calibrate a batch of about 20 ms
        start = time.process_time()
        for _ in range(n):
            fn()
        if time.process_time() - start > 0.02:
            break
        n *= 2
    best, calls = math.inf, 0
    rounds_end = time.process_time() + seconds
    for _ in range(5):
        batches = 0
        start = time.process_time()
        while True:
            for _ in range(n):
                fn()
            batches += 1
            elapsed = time.process_time() - start
            if elapsed > seconds / 5 or time.process_time() > rounds_end:
                break
        calls += batches * n
        best = min(best, elapsed / (batches * n))
    return calls, best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per case (default 2)")
    args = parser.parse_args()

    spec = make_spec()
    state, current, now = warm_history(spec)
    obs = [Observation.of("rps", now, 1500.0), Observation.of("cpu", now, 0.81)]
    cap = Capacity(current=current)
    sched_spec = make_spec(
        schedules=[
            {
                "name": "biz",
                "cron": "0 9 * * 1-5",
                "timeZone": "Europe/Berlin",
                "durationSeconds": 36000,
                "minReplicas": 4,
            }
        ]
    )
    sched_state, sched_current, sched_now = warm_history(sched_spec)

    # the targets' amounts as `decide` reads them (AverageValue 100, Utilization 70 %)
    rps_target, cpu_target = (m.target.amount for m in spec.metrics if m.target is not None)
    cases: list[tuple[str, Callable[[], object]]] = [
        (
            "baseline: bare HPA formula x2 (function calls)",
            lambda: (
                hpa_formula(current, 1500.0 / current, 100.0),
                hpa_formula(current, 0.81, 0.7),
            ),
        ),
        (
            "baseline: gemini per-metric formula x2 (replicas.target_tracking)",
            lambda: (
                replicas.target_tracking(True, rps_target, 1500.0, current, 0.1, 0.1),
                replicas.target_tracking(False, cpu_target, 0.81, current, 0.1, 0.1),
            ),
        ),
        (
            "decide: 2 metrics, default behavior, first tick (no history)",
            lambda: decide(spec, PolicyState(), obs, cap, now),
        ),
        (
            "**decide: 2 metrics, default behavior, full window of history**",
            lambda: decide(spec, state, obs, cap, now),
        ),
        (
            "decide: same, plus one cron schedule (time zone)",
            lambda: decide(
                sched_spec, sched_state, obs, Capacity(current=sched_current), sched_now
            ),
        ),
    ]
    print(
        f"decide() micro-benchmark — Python {platform.python_version()}, one core, "
        f"CPU time of this process (time.process_time), best of 5 rounds, "
        f"~{args.seconds:g} s per case"
    )
    print(
        f"history: {len(state.recommendations)} recommendations, "
        f"{len(state.scale_events)} scale events, current {current}\n"
    )
    print("| case | calls | µs per call | calls/s | x baseline time |")
    print("| --- | ---: | ---: | ---: | ---: |")
    base = None
    for name, fn in cases:
        calls, per = measure(fn, args.seconds)
        base = base or per
        print(f"| {name} | {calls:,} | {per * 1e6:.2f} | {1 / per:,.0f} | {per / base:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
