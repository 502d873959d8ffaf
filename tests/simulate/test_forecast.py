"""A metric read with `offsetSeconds` (a seasonal forecast) in the simulator: the replica count
rises ahead of a ramp that happened yesterday, and the first day (no history) reads nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gemini.simulate.runner import grid_of, run_policy, slo_of
from gemini.simulate.scenario import load_scenario
from gemini.simulate.scoring import violations
from tests.simulate.helpers import policy_doc, write_scenario

LEAD = 1800  # the forecast looks this far ahead of now, yesterday


def two_days() -> list[float]:
    """Load per minute: 1 all day, 10 from 10:00 to 11:00 (UTC), two days running."""
    return [10.0 if 600 <= m % 1440 < 660 else 1.0 for m in range(2 * 1440)]


def forecast(offset: int = 86400 - LEAD) -> dict[str, Any]:
    return {
        "name": "forecast",
        "source": {
            "prometheus": {
                "serverAddress": "http://p:9090",
                "query": "sum(rate(requests_total[5m]))",
            }
        },
        "target": {"type": "AverageValue", "averageValue": 0.8},
        "offsetSeconds": offset,
        "windowSeconds": LEAD,
        "windowFunction": "Max",
        "fallback": {"policy": "Ignore"},
    }


def scenario(tmp: Path, *metrics: dict[str, Any]) -> Path:
    reactive = policy_doc()["spec"]["metrics"][0]
    doc = policy_doc(metrics=[reactive, *metrics])
    observe = {"utilization": "utilization"} | {m["name"]: "load" for m in metrics}
    return write_scenario(
        tmp,
        two_days(),
        policies=[doc],
        backend={"startupSeconds": 600, "initialReplicas": 2},
        observe=observe,
    )


def replay_two_days(path: Path) -> tuple[list[int], list[int]]:
    """Replicas at 09:45 on each day, and each day's SLO-violation minutes."""
    sc = load_scenario(path)
    grid = grid_of(sc)
    run = run_policy(sc, sc.policies[0], grid)
    per_minute = round(60 / grid.step)
    at = [run.count[(day * 1440 + 9 * 60 + 45) * per_minute] for day in (0, 1)]
    late = [0, 0]
    for k, violated in enumerate(violations(run, slo_of(sc))):
        if violated:
            late[int((grid.time(k) - grid.t0) // 86400)] += 1
    return at, [n // per_minute for n in late]


def test_the_forecast_provisions_ahead_of_yesterdays_ramp(tmp_path: Path) -> None:
    (tmp_path / "with").mkdir()
    (tmp_path / "without").mkdir()
    ahead, ahead_late = replay_two_days(scenario(tmp_path / "with", forecast()))
    plain, plain_late = replay_two_days(scenario(tmp_path / "without"))
    # day 1: no history; the forecast reads nothing and (fallback Ignore) holds nothing back
    assert ahead[0] == plain[0] <= 2 and ahead_late[0] == plain_late[0] >= 10
    # day 2 at 09:45: yesterday's 10:00-10:15 asks for 10 / 0.8 = 12.5 replicas (2 -> 6 -> 12
    # at HPA's rate, then within the 0.1 tolerance); the reactive policy has not seen the ramp
    # yet, and meets it 600 s of start-up late
    assert ahead[1] == 12 and plain[1] <= 2
    assert ahead_late[1] == 0 and plain_late[1] >= 10
