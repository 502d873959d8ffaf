"""Bigtable's "no more than 10 % down per 10 minutes" counts only removals in the period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gemini.policy.behavior import percent_down_floor
from gemini.policy.state import ScaleEvent

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PERIOD = timedelta(seconds=600)


def ev(seconds_ago: int, change: int) -> ScaleEvent:
    return ScaleEvent(NOW - timedelta(seconds=seconds_ago), change)


@pytest.mark.parametrize(
    ("current", "events", "floor"),
    [
        pytest.param(20, (), 18, id="fresh-10-percent"),
        pytest.param(5, (), 4, id="small-cluster-one-node-may-go"),
        pytest.param(8, (ev(120, 3), ev(60, 3)), 7, id="recent-scale-ups-do-not-widen-allowance"),
        pytest.param(19, (ev(60, -1),), 18, id="partly-used-allowance"),
        pytest.param(18, (ev(60, -2),), 18, id="allowance-used-up"),
        pytest.param(18, (ev(700, -2),), 17, id="old-removals-outside-period"),
        pytest.param(1, (), 1, id="never-below-one-node"),
    ],
)
def test_percent_down_floor(current: int, events: tuple[ScaleEvent, ...], floor: int) -> None:
    assert percent_down_floor(current, events, 10.0, PERIOD, NOW) == floor
