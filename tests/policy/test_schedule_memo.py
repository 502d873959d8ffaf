"""The schedule memos (`_window`, `bounds`) never change an answer.

Property: for any set of schedules and any sequence of instants (forwards, backwards, across
daylight-saving changes), `bounds` with its memos warm equals `bounds` computed from cold memos.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gemini.policy import schedule
from gemini.policy.spec import Schedule

T0 = datetime(2026, 3, 27, 22, 0, tzinfo=UTC)  # two days before Europe's spring change
# a day or two before a change: Europe spring / autumn, US autumn, Lord Howe (30 min) spring
STARTS = [
    T0,
    datetime(2026, 10, 23, 22, 0, tzinfo=UTC),
    datetime(2026, 10, 30, 12, 0, tzinfo=UTC),
    datetime(2026, 4, 3, 12, 0, tzinfo=UTC),
]
CRONS = ["0 * * * *", "30 1 * * *", "0 2 * * *", "15 2 * * sun", "*/20 * * * *", "0 0 * * 1-5"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]


def _cold(lo: int, hi: int, schedules: list[Schedule], now: datetime) -> schedule.Bounds:
    schedule._ACTIVE.clear()
    schedule._BOUNDS.clear()
    schedule._NEXT.clear()
    return schedule.bounds(lo, hi, schedules, now)


schedules_st = st.lists(
    st.builds(
        lambda i, cron, tz, duration, low, high: Schedule(
            name=f"s{i}",
            cron=cron,
            time_zone=tz,
            duration_seconds=duration,
            min_replicas=low,
            max_replicas=high,
        ),
        st.integers(0, 99),
        st.sampled_from(CRONS),
        st.sampled_from(ZONES),
        st.sampled_from([60, 600, 1800, 3600, 5400, 86400]),
        st.integers(0, 20),
        st.none() | st.integers(20, 40),
    ),
    min_size=1,
    max_size=6,
)
# offsets in minutes from the start: a walk of small steps (the clock may also go back), or
# instants anywhere in four days
walk_st = st.tuples(
    st.integers(0, 4 * 24 * 60), st.lists(st.integers(-20, 40), min_size=1, max_size=80)
).map(lambda w: [w[0] + sum(w[1][: i + 1]) for i in range(len(w[1]))])
instants_st = walk_st | st.lists(st.integers(0, 4 * 24 * 60), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(schedules_st, st.sampled_from(STARTS), instants_st, st.booleans())
def test_memoized_bounds_equal_cold_bounds(
    schedules: list[Schedule], t0: datetime, minutes: list[int], ordered: bool
) -> None:
    if ordered:
        minutes = sorted(minutes)
    expected = []
    for m in minutes:
        expected.append(_cold(1, 30, schedules, t0 + timedelta(minutes=m)))
    schedule._ACTIVE.clear()
    schedule._BOUNDS.clear()
    schedule._NEXT.clear()
    got = [schedule.bounds(1, 30, schedules, t0 + timedelta(minutes=m)) for m in minutes]
    assert got == expected


def test_a_long_run_of_ticks_matches_cold_answers() -> None:
    """Every 15 s for two days across the spring change, half-hourly floors like the tuner's."""
    floors = [
        Schedule(
            name=f"f{i}",
            cron=f"{(i * 30 - 2) % 60} {((i * 30 - 2) // 60) % 24} * * *",
            time_zone="Europe/Berlin",
            duration_seconds=1920,
            min_replicas=i % 7 + 1,
        )
        for i in range(48)
    ]
    warm = []
    now = T0
    for _ in range(2 * 24 * 60 * 4):
        warm.append(schedule.bounds(1, 50, floors, now))
        now += timedelta(seconds=15)
    now = T0
    for i in range(0, len(warm), 97):  # a sample of instants, each from cold memos
        assert _cold(1, 50, floors, now + timedelta(seconds=15 * i)) == warm[i]


def test_a_schedule_with_no_start_left_is_remembered_as_inactive_for_ever() -> None:
    """Validation refuses a cron that never fires; one that has fired for the last time (the
    trigger's calendar ends with the year 9999) is inactive for ever after, and that answer
    is memoized: asking the trigger again scans to the year 9999 (0.1 s) on every tick."""
    last = Schedule(name="new-year", cron="0 0 1 1 *", durationSeconds=3600, minReplicas=5)
    now = datetime(9999, 6, 1, tzinfo=UTC)
    _cold(1, 10, [], now)
    assert schedule.bounds(1, 10, [last], now) == schedule.Bounds(1, 10)
    key = (last.cron, last.time_zone, last.duration_seconds)
    assert schedule._ACTIVE[key] == (now, None, False)
    later = now + timedelta(days=100)
    assert schedule._window(last, later) == (now, None, False)
    # the year's one start is still active within its hour
    assert schedule.is_active(last, datetime(9999, 1, 1, 0, 30, tzinfo=UTC))
