"""`PolicyState`: queries, scale events, pruning and the CR status form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gemini.policy.state import STATE_VERSION, PolicyState, Recommendation, ScaleEvent

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
