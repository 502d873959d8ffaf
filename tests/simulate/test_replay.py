"""Replay: the same loop/engine as the controller, no future samples, gaps, determinism."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemini import loop
from gemini.metrics import MetricRequest
from gemini.policy import engine
from gemini.policy.decision import Capacity, Decision
from gemini.policy.spec import parse_policy
from gemini.policy.state import PolicyState
from gemini.scalers import Scaler
from gemini.scalers.simulated import SimulatedScaler
from gemini.series import Observation, Sample, Trace
from gemini.simulate.models import DeploymentModel, ModelSpec
from gemini.simulate.replay import ModelReader, make_grid, replay
from gemini.simulate.runner import grid_of, mapping_for, run_policy, simulate
from gemini.simulate.scenario import load_scenario
from tests.simulate.helpers import policy_doc, write_scenario


def test_simulated_scaler_is_a_scaler_and_standalone() -> None:
    scaler: Scaler = SimulatedScaler()
    pol = parse_policy(policy_doc())
    ref = loop.target_ref(pol)
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert scaler.capacity(ref, now).current == 1
    assert scaler.apply(ref, 3, now).changed
    assert scaler.apply(ref, 3, now).status.value == "unchanged"
    assert scaler.capacity(ref, now) == Capacity(current=3, ready=3)


@settings(max_examples=30, deadline=None)
@given(
    delay=st.sampled_from([0.0, 30.0, 90.0, 150.0]),
    sample=st.sampled_from([15.0, 60.0]),
    reads=st.lists(st.integers(0, 80), min_size=1, max_size=20),
    offset=st.sampled_from([0, 60, 600]),
    window=st.sampled_from([0, 120]),
)
def test_reader_never_returns_future_samples(
    delay: float, sample: float, reads: list[int], offset: int, window: int
) -> None:
    """Every sample was visible (taken `delay` before the read, and with `offsetSeconds` that
    much before again), and an offset sample is the one taken then, moved forward by it."""
    model = DeploymentModel(1.0, 0, 2)
    reader = ModelReader(model, {"m": "load"}, delay_seconds=delay, sample_seconds=sample)
    metric = (
        parse_policy(policy_doc())
        .spec.metrics[0]
        .model_copy(update={"name": "m", "offset_seconds": offset, "window_seconds": window})
    )
    req = MetricRequest("default/x", "default", metric)
    t0 = 1_000_000.0
    k = 0
    for target in sorted(reads):
        while k <= target:
            reader.sample(t0 + k * 15.0, float(k))  # the load is the step number
            k += 1
        now = datetime.fromtimestamp(t0 + target * 15.0, UTC)
        (obs,) = reader.read([req], now)
        # a sample was taken `delay` before it can be read; one read `offset` back, at most then
        newest = now.timestamp() - max(delay, offset)
        for s in obs.samples:
            taken = s.at.timestamp() - offset
            assert taken <= newest
            assert s.value == (taken - t0) / 15.0
        # and nothing visible is held back: the reader samples at t0, t0 + sample, ... (15
        # divides both intervals), and the newest of those taken by then is returned
        last = min(newest, now.timestamp())
        if last < t0:
            assert not obs.ok
        else:
            assert obs.samples[-1].at.timestamp() - offset == t0 + (last - t0) // sample * sample


@settings(max_examples=60, deadline=None)
@given(
    sample=st.sampled_from([0.001, 0.1, 1.0, 7.0, 60.0, 3600.0]),
    gaps=st.lists(st.sampled_from([0.5, 1.0, 15.0, 60.0, 3600.0, 86400.0]), max_size=30),
)
def test_reader_samples_on_its_own_schedule_whatever_the_steps(
    sample: float, gaps: list[float]
) -> None:
    """One sample per call at most, and the next one due is the first of t0 + k x sample after
    the step: a step of a day with 1 ms sampling skips the 86 million in between at once (one
    at a time, it took minutes a step)."""
    model = DeploymentModel(1.0, 0, 2)
    reader = ModelReader(model, {"m": "load"}, sample_seconds=sample)
    t0 = 1_700_000_000.0
    t, taken = t0, 0
    for gap in [0.0, *gaps]:
        t += gap
        before = len(reader._times["load"])
        reader.sample(t, 1.0)
        taken = len(reader._times["load"]) - before
        assert taken <= 1
        nxt = reader._next_sample
        assert nxt is not None and t < nxt <= t + sample * (1 + 1e-9) + 1e-6
        k = (nxt - t0) / sample
        assert abs(k - round(k)) < 1e-3 or sample < 1  # on the grid t0 + k x sample


def test_grid_holds_gaps_and_masks_long_ones() -> None:
    times = (0.0, 60.0, 120.0, 600.0, 660.0)
    trace = Trace(times, (1.0, 2.0, 3.0, 4.0, 5.0))
    grid = make_grid(trace, 60.0)
    assert grid.demand == (1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 4.0, 5.0)
    assert grid.masked[2:10] == (True,) * 8  # inside a gap of 8 intervals: not scored
    assert not any(grid.masked[:2]) and not any(grid.masked[10:])


def test_grid_averages_finer_trace_over_a_step() -> None:
    trace = Trace(tuple(float(i) for i in range(60)), tuple(float(i % 2) for i in range(60)))
    grid = make_grid(trace, 15.0)
    assert len(grid) == 4
    assert grid.demand[0] == pytest.approx(7 / 15)


def test_replay_goes_through_loop_tick_and_engine_decide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = load_scenario(write_scenario(tmp_path, [2.0] * 30))
    calls = {"tick": 0, "decide": 0}
    real_tick, real_decide = loop.tick, engine.decide

    def spy_tick(*a: Any, **k: Any) -> Any:
        calls["tick"] += 1
        return real_tick(*a, **k)

    def spy_decide(*a: Any, **k: Any) -> Any:
        calls["decide"] += 1
        return real_decide(*a, **k)

    monkeypatch.setattr(loop, "tick", spy_tick)
    monkeypatch.setattr(engine, "decide", spy_decide)
    grid = grid_of(scenario)
    run_policy(scenario, scenario.policies[0], grid)
    assert calls == {"tick": len(grid), "decide": len(grid)}


def test_replay_decisions_equal_a_controller_style_loop(tmp_path: Path) -> None:
    """Drive `loop.tick` by hand (as the controller does) with the same reader and scaler:
    the replay's decisions are identical."""
    scenario = load_scenario(write_scenario(tmp_path))
    policy = scenario.policies[0]
    grid = grid_of(scenario)
    got: list[Decision] = []
    run_policy(scenario, policy, grid, on_decision=got.append)

    model = scenario.model.build()
    scaler = SimulatedScaler(model)
    reader = ModelReader(model, mapping_for(scenario, policy), sample_seconds=60.0)
    state = PolicyState()
    want: list[Decision] = []
    prev = grid.demand[0]
    for k, load in enumerate(grid.demand):
        t = grid.time(k)
        model.advance(t, prev)
        reader.sample(t, load)
        res = loop.tick(
            policy, state, reader=reader, scaler=scaler, now=datetime.fromtimestamp(t, UTC)
        )
        state = res.state
        assert res.decision is not None
        want.append(res.decision)
        prev = load
    assert [d.to_dict() for d in got] == [d.to_dict() for d in want]


def _observation(m: dict[str, Any]) -> Observation:
    if m["status"] == "error":
        kind, _, message = m["error"].partition(": ")
        return Observation.failed(m["name"], kind, message)
    return Observation(m["name"], (Sample(datetime.fromisoformat(m["sampleAt"]), m["value"]),))


def test_decision_log_replays_exactly(tmp_path: Path) -> None:
    """Re-deciding every logged decision from its logged inputs gives the logged decision."""
    scenario = load_scenario(write_scenario(tmp_path))
    policy = scenario.policies[0]
    lines: list[str] = []
    run_policy(
        scenario,
        policy,
        grid_of(scenario),
        on_decision=lambda d: lines.append(json.dumps(d.to_dict())),
    )
    assert any(json.loads(x)["applied"] for x in lines)
    state = PolicyState()
    for line in lines:
        rec = json.loads(line)
        logged = Decision.from_dict(rec)
        obs = [_observation(m) for m in rec["metrics"]]
        decision, state = engine.decide(
            policy.spec, state, obs, Capacity(current=logged.current), logged.at, policy=policy.key
        )
        # the whole record: what decide settles itself (unchanged) as logged, and what the
        # shell added after acting (applied, outcome) is all that differs otherwise
        if decision.outcome is None:
            decision = decision.with_outcome(logged.applied, logged.outcome or "")
        assert decision.to_dict() == rec
        if logged.applied:
            state = state.with_scale_event(logged.at, logged.current, logged.desired)


def test_two_runs_write_identical_logs(tmp_path: Path) -> None:
    scenario = load_scenario(write_scenario(tmp_path))
    logs = []
    for _ in range(2):
        out: list[str] = []
        simulate(scenario, on_decision=lambda d, out=out: out.append(json.dumps(d.to_dict())))
        logs.append(out)
    assert logs[0] == logs[1] and len(logs[0]) > 100


def test_closed_loop_scale_up_lowers_utilization(tmp_path: Path) -> None:
    scenario = load_scenario(write_scenario(tmp_path, [1.0] * 5 + [8.0] * 40))
    run = run_policy(scenario, scenario.policies[0], grid_of(scenario))
    assert run.count[-1] > run.count[0]
    assert 8.0 / run.ready_capacity[-1] <= 0.9
    assert run.events and all(c > 0 for _, c in run.events[:1])


def test_replay_with_step_grid_and_queue_model() -> None:
    trace = Trace(tuple(60.0 * i for i in range(30)), tuple([2.0] * 10 + [12.0] * 20))
    grid = make_grid(trace, 15.0)
    doc = policy_doc()
    doc["spec"]["metrics"][0] = {
        "name": "backlog",
        "source": {"pubsub": {"subscription": "projects/p/subscriptions/work"}},
        "target": {"type": "AverageValue", "averageValue": 100},
    }
    pol = parse_policy(doc)
    run = replay(pol, grid, ModelSpec("queue", 4.0, 30.0, 1), {"backlog": "backlog"})
    assert run.age is not None and max(run.age) > 0
    assert max(run.count) > 1
