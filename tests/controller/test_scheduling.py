"""Due times and batching, driven by a ManualClock (no sleeps)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemini.clock import ManualClock
from gemini.controller.scheduling import Scheduler, next_due

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)  # epoch-aligned for 1, 5, 15, 30, 60 s


class Recorder:
    def __init__(self) -> None:
        self.batches: list[tuple[datetime, list[str]]] = []
        self.block: threading.Event | None = None

    def __call__(self, due: datetime, keys: list[str]) -> None:
        self.batches.append((due, sorted(keys)))
        if self.block is not None:
            self.block.wait(5)


def make(start: datetime = T0) -> tuple[ManualClock, Recorder, Scheduler]:
    clock = ManualClock(start)
    rec = Recorder()
    return clock, rec, Scheduler(clock, rec)


@pytest.mark.parametrize(
    ("interval", "now", "expected"),
    [
        pytest.param(15, T0, T0, id="aligned-now"),
        pytest.param(15, T0 + timedelta(seconds=1), T0 + timedelta(seconds=15), id="next-slot"),
        pytest.param(60, T0 + timedelta(seconds=59.5), T0 + timedelta(seconds=60), id="minute"),
        pytest.param(7, T0, datetime.fromtimestamp(T0.timestamp() // 7 * 7 + 7, UTC), id="odd"),
    ],
)
def test_next_due_is_epoch_aligned(interval: int, now: datetime, expected: datetime) -> None:
    assert next_due(interval, now) == expected


@given(st.integers(1, 3600), st.floats(0, 10_000_000))
def test_next_due_is_never_early_and_within_one_interval(interval: int, offset: float) -> None:
    now = T0 + timedelta(seconds=offset)
    due = next_due(interval, now)
    assert now <= due < now + timedelta(seconds=interval)
    assert round(due.timestamp()) % interval == 0


def test_policies_due_together_run_as_one_batch() -> None:
    clock, rec, s = make(T0 + timedelta(seconds=1))
    for i in range(5):
        s.schedule(f"ns/p{i}", 15)
    s.schedule("ns/slow", 30)
    s.schedule("ns/fast", 5)
    clock.set(T0 + timedelta(seconds=5))
    s.run_due(wait=True)
    assert rec.batches == [(T0 + timedelta(seconds=5), ["ns/fast"])]
    rec.batches.clear()
    for t in (10, 15, 20, 25, 30):
        clock.set(T0 + timedelta(seconds=t))
        s.run_due(wait=True)
    # 10 s, 15 s, 20 s, 25 s and 30 s instants; at 30 s all three intervals coincide
    assert [len(k) for _, k in rec.batches] == [1, 6, 1, 1, 7]
    assert rec.batches[-1] == (
        T0 + timedelta(seconds=30),
        sorted(["ns/fast", "ns/slow", *[f"ns/p{i}" for i in range(5)]]),
    )


def test_soon_schedules_a_new_policy_within_a_second() -> None:
    clock, rec, s = make(T0 + timedelta(seconds=3.2))
    s.schedule("ns/new", 60, soon=True)
    assert s.due_at("ns/new") == T0 + timedelta(seconds=4)
    clock.advance(0.8)
    s.run_due(wait=True)
    assert rec.batches == [(T0 + timedelta(seconds=4), ["ns/new"])]
    assert s.due_at("ns/new") == T0 + timedelta(seconds=60)


def test_unscheduled_policy_is_not_run() -> None:
    clock, rec, s = make()
    s.schedule("ns/a", 1)
    s.schedule("ns/b", 1)
    s.unschedule("ns/a")
    clock.advance(1)
    s.run_due(wait=True)
    assert [k for _, k in rec.batches] == [["ns/b"]]
    assert len(s) == 1


def test_rescheduling_with_a_new_interval_replaces_the_old_one() -> None:
    clock, rec, s = make(T0 + timedelta(seconds=1))
    s.schedule("ns/a", 60)
    s.schedule("ns/a", 5)
    for t in (5, 10):
        clock.set(T0 + timedelta(seconds=t))
        s.run_due(wait=True)
    assert [d for d, _ in rec.batches] == [T0 + timedelta(seconds=5), T0 + timedelta(seconds=10)]


def test_a_policy_still_running_is_counted_as_overrun_and_coalesced() -> None:
    clock, rec, s = make(T0 + timedelta(seconds=0.5))
    rec.block = threading.Event()
    s.schedule("ns/slow", 1)
    clock.set(T0 + timedelta(seconds=1))
    s.run_due()  # starts and blocks
    clock.set(T0 + timedelta(seconds=2))
    s.run_due()  # still in flight: skipped
    assert s.overruns == 1
    rec.block.set()
    eventually_done(s)
    # the missed instant is coalesced into one run as soon as the slow one ends
    assert s.due_at("ns/slow") == T0 + timedelta(seconds=2)  # now, not at 3 s
    s.run_due(wait=True)
    assert len(rec.batches) == 2
    s.stop()


def eventually_done(s: Scheduler) -> None:
    for _ in range(500):
        if not s._inflight:
            return
        threading.Event().wait(0.01)
    raise AssertionError("batch did not finish")


def test_falling_behind_by_more_than_an_interval_counts_overruns_and_skips_missed() -> None:
    clock, rec, s = make(T0 + timedelta(seconds=0.5))
    s.schedule("ns/a", 1)
    clock.set(T0 + timedelta(seconds=10.5))  # stalled for 10 s
    s.run_due(wait=True)
    assert len(rec.batches) == 1  # one catch-up evaluation, not ten
    assert s.overruns == 1
    assert s.due_at("ns/a") == T0 + timedelta(seconds=11)


def test_a_failing_batch_does_not_stop_the_others() -> None:
    clock = ManualClock(T0 + timedelta(seconds=0.5))
    seen: list[str] = []

    def run(due: datetime, keys: list[str]) -> None:
        if "ns/bad" in keys and len(seen) == 0:
            seen.append("bad")
            raise RuntimeError("boom")
        seen.extend(keys)

    s = Scheduler(clock, run)
    s.schedule("ns/bad", 1)
    clock.set(T0 + timedelta(seconds=1))
    s.run_due(wait=True)
    clock.set(T0 + timedelta(seconds=2))
    s.run_due(wait=True)
    assert seen == ["bad", "ns/bad"]
