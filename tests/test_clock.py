"""Time helpers shared by the CLI and the dashboard."""

from __future__ import annotations

import pytest

from gemini.clock import span


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0, "0 s", id="zero"),
        pytest.param(45, "45 s", id="seconds"),
        pytest.param(59.6, "1 min", id="rounded-up-to-a-minute"),
        pytest.param(1200, "20 min", id="minutes"),
        pytest.param(90, "1 min 30 s", id="minutes-and-seconds"),
        pytest.param(82800, "23 h", id="a-day-ahead-of-an-hour"),
        pytest.param(84600, "23 h 30 min", id="hours-and-minutes"),
        pytest.param(86400, "1 d", id="a-day"),
        pytest.param(601200, "167 h", id="a-week-less-an-hour"),
        pytest.param(604800, "7 d", id="a-week"),
        pytest.param(3630, "1 h 0 min 30 s", id="to-the-second-above-an-hour"),
        pytest.param(86370, "23 h 59 min 30 s", id="a-day-less-30-s"),
        pytest.param(90000, "25 h", id="a-day-and-an-hour-in-hours"),
    ],
)
def test_span(seconds: float, text: str) -> None:
    assert span(seconds) == text
