"""`PolicyState`: queries, scale events, pruning and the CR status form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemini.policy.behavior import stabilize
from gemini.policy.state import STATE_VERSION, PolicyState, Recommendation, ScaleEvent, remember

T0 = datetime(2026, 3, 2, 8, 30, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


FULL = PolicyState(
    recommendations=(Recommendation(at(-30), 5), Recommendation(at(-15), 7)),
    scale_events=(ScaleEvent(at(-60), 3), ScaleEvent(at(-20), -1)),
    failures=(("backlog", 2), ("cpu", 1)),
    last_active_at=at(-15),
    last_evaluated_at=at(0),
)


@pytest.mark.parametrize(
    ("events", "up", "down", "last"),
    [
        pytest.param((), None, None, None, id="empty"),
        pytest.param(((-60, 3), (-20, -1)), -60, -20, -20, id="up-then-down"),
        pytest.param(((-60, -3), (-20, 2)), -20, -60, -20, id="down-then-up"),
        pytest.param(((-60, 1), (-20, 2)), -20, None, -20, id="only-up"),
    ],
)
def test_last_events(
    events: tuple[tuple[int, int], ...], up: int | None, down: int | None, last: int | None
) -> None:
    state = PolicyState(scale_events=tuple(ScaleEvent(at(s), c) for s, c in events))
    assert state.last_scale_up_at == (None if up is None else at(up))
    assert state.last_scale_down_at == (None if down is None else at(down))
    assert state.last_scale_at == (None if last is None else at(last))


def test_with_scale_event_records_signed_change() -> None:
    state = PolicyState().with_scale_event(at(0), 4, 9).with_scale_event(at(15), 9, 6)
    assert state.scale_events == (ScaleEvent(at(0), 5), ScaleEvent(at(15), -3))
    assert state.with_scale_event(at(30), 6, 6) is state


def test_failure_count() -> None:
    assert FULL.failure_count("backlog") == 2
    assert FULL.failure_count("other") == 0


@pytest.mark.parametrize(
    ("keep_recs", "keep_events", "recs", "events"),
    [
        pytest.param(300, 600, 2, 2, id="keep-all"),
        pytest.param(20, 600, 1, 2, id="old-recommendation-dropped"),
        pytest.param(15, 60, 0, 1, id="boundary-excluded"),
        pytest.param(0, 0, 0, 0, id="no-windows"),
    ],
)
def test_pruned(keep_recs: int, keep_events: int, recs: int, events: int) -> None:
    pruned = FULL.pruned(T0, timedelta(seconds=keep_recs), timedelta(seconds=keep_events))
    assert (len(pruned.recommendations), len(pruned.scale_events)) == (recs, events)
    assert pruned.failures == FULL.failures


def test_pruned_returns_same_object_when_nothing_to_drop() -> None:
    assert FULL.pruned(T0, timedelta(hours=1), timedelta(hours=1)) is FULL


def test_status_round_trip_keeps_microseconds() -> None:
    status = FULL.to_status()
    assert status["version"] == STATE_VERSION
    assert status["recommendations"][0] == ["2026-03-02T08:29:30.123456Z", 5]
    assert status["failures"] == {"backlog": 2, "cpu": 1}
    assert PolicyState.from_status(status) == FULL
    assert PolicyState.from_status(json.loads(json.dumps(status))) == FULL


def test_empty_round_trip() -> None:
    assert PolicyState.from_status(PolicyState().to_status()) == PolicyState()


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(None, id="none"),
        pytest.param({}, id="empty"),
        pytest.param({"version": 99, "recommendations": []}, id="unknown-version"),
        pytest.param(
            {"version": STATE_VERSION, "recommendations": [["yesterday", 3]]}, id="bad-time"
        ),
        pytest.param({"version": STATE_VERSION, "recommendations": [[1, 2, 3]]}, id="bad-shape"),
        pytest.param(
            {"version": STATE_VERSION, "scaleEvents": [["2026-01-01T00:00:00Z", "x"]]},
            id="bad-number",
        ),
        pytest.param({"version": STATE_VERSION, "failures": {"a": "many"}}, id="bad-failures"),
        pytest.param({"version": STATE_VERSION, "lastActiveAt": 5}, id="bad-active"),
    ],
)
def test_garbage_status_gives_empty_state(status: dict[str, Any] | None) -> None:
    assert PolicyState.from_status(status) == PolicyState()


def _remembered(values: list[int]) -> list[int]:
    history: tuple[Recommendation, ...] = ()
    for i, n in enumerate(values):
        history = remember(history, at(15 * i), n)
    assert [r.at for r in history] == sorted(r.at for r in history)  # still oldest first
    return [r.replicas for r in history]


@pytest.mark.parametrize(
    ("values", "kept"),
    [
        pytest.param([], [], id="empty"),
        pytest.param([5, 5, 5, 5], [5], id="flat-keeps-the-newest"),
        pytest.param([3, 4, 5, 6], [3, 4, 5, 6], id="rising-keeps-all-each-a-lowest"),
        pytest.param([6, 5, 4, 3], [6, 5, 4, 3], id="falling-keeps-all-each-a-highest"),
        pytest.param([5, 9, 2, 7, 4, 6], [9, 2, 7, 4, 6], id="mixed-drops-the-first-5"),
        pytest.param([5, 9, 2, 7, 4, 6, 7], [9, 2, 4, 6, 7], id="a-newest-7-drops-the-older"),
        pytest.param([2, 9, 5], [2, 9, 5], id="extremes-kept"),
        pytest.param([2, 9, 5, 9, 2], [9, 2], id="equal-newer-replaces-older"),
    ],
)
def test_remember_drops_only_entries_no_window_picks(values: list[int], kept: list[int]) -> None:
    assert _remembered(values) == kept


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 90), st.integers(0, 12)), max_size=40),
    windows=st.lists(st.tuples(st.integers(0, 900), st.integers(0, 900)), min_size=1, max_size=4),
    recommendation=st.integers(0, 12),
    current=st.integers(0, 12),
)
def test_remember_changes_no_stabilization_result(
    steps: list[tuple[int, int]],
    windows: list[tuple[int, int]],
    recommendation: int,
    current: int,
) -> None:
    """Any up/down windows (an edited spec's too) pick the same from the remembered history as
    from every recommendation ever made, after every step; equal times included."""
    full: tuple[Recommendation, ...] = ()
    kept: tuple[Recommendation, ...] = ()
    now = T0
    for gap, n in steps:
        now += timedelta(seconds=gap)
        full = (*full, Recommendation(now, n))
        kept = remember(kept, now, n)
        later = now + timedelta(seconds=gap)
        for up, down in windows:
            w_up, w_down = timedelta(seconds=up), timedelta(seconds=down)
            assert stabilize(recommendation, current, kept, w_up, w_down, later) == stabilize(
                recommendation, current, full, w_up, w_down, later
            )
    assert len(kept) <= len(full)
