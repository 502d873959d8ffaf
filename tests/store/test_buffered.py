"""BufferedWriter: recording never waits for the store; outages are buffered, drops counted."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from gemini.policy.decision import Decision
from gemini.store import open_store
from gemini.store.buffered import BufferedWriter
from gemini.store.memory import MemoryStore
from tests.store.factory import T0, decision


class OutageStore(MemoryStore):
    """A real MemoryStore whose writes fail while `down` and block while `stall` is clear."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.stall = threading.Event()
        self.stall.set()
        self.entered = threading.Event()  # set once the writer thread is inside write_many
        self.attempts = 0

    def write_many(self, decisions: Sequence[Decision]) -> None:
        self.attempts += 1
        self.entered.set()
        self.stall.wait(60)
        if self.down:
            raise ConnectionError("store unreachable")
        super().write_many(decisions)


def test_everything_recorded_is_written_in_batches(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = open_store(f"sqlite:///{tmp_path / 'd.sqlite'}")
    writer = BufferedWriter(store, batch_size=100, flush_interval=0.05)
    for i in range(1050):
        writer.record(decision(f"ns/p{i % 7}", float(i)))
    assert writer.close()
    assert store.count() == 1050
    stats = writer.stats()
    assert (stats.written, stats.dropped, stats.buffered, stats.healthy) == (1050, 0, 0, True)
    store.close()


def test_record_does_not_wait_for_a_stalled_store() -> None:
    # No wall-clock bound (CI boxes are noisy): the writer thread is held inside write_many
    # until the test lets it go, so a record() that waited for the store could not finish.
    store = OutageStore()
    store.stall.clear()
    writer = BufferedWriter(store, batch_size=10, flush_interval=0.01)
    writer.record(decision(at=0.0))
    assert store.entered.wait(5), "the writer thread never reached the store"
    recorder = threading.Thread(
        target=lambda: [writer.record(decision(at=float(i))) for i in range(1, 500)]
    )
    try:
        recorder.start()
        recorder.join(timeout=30)
        assert not recorder.is_alive(), "record() blocked while the store stalls"
        assert not store.stall.is_set()
        stats = writer.stats()
        assert (stats.buffered, stats.written, store.attempts) == (500, 0, 1)
    finally:
        store.stall.set()
    assert writer.close()
    assert store.count() == 500


def test_outage_is_buffered_then_written_in_order() -> None:
    store = OutageStore()
    store.down = True
    writer = BufferedWriter(store, batch_size=5, flush_interval=0.01, retry_seconds=0.01)
    for i in range(20):
        writer.record(decision(at=float(i), desired=i))
    assert not writer.flush(timeout=0.2)
    stats = writer.stats()
    assert (stats.healthy, stats.buffered, stats.written) == (False, 20, 0)
    assert stats.write_failures >= 1
    assert stats.last_error == "ConnectionError: store unreachable"
    store.down = False
    assert writer.flush(timeout=5)
    assert [d.desired for d in store.decisions(limit=100)] == list(range(19, -1, -1))
    assert writer.stats().healthy
    writer.close()


def test_full_buffer_drops_and_reports_the_gap(caplog: pytest.LogCaptureFixture) -> None:
    store = OutageStore()
    store.down = True
    writer = BufferedWriter(
        store, max_buffer=10, batch_size=5, flush_interval=0.01, retry_seconds=0.01
    )
    for i in range(25):
        writer.record(decision(at=float(i)))
    stats = writer.stats()
    assert stats.dropped == 15
    (gap,) = stats.gaps
    assert (gap.dropped, gap.first_at.second, gap.last_at.second) == (15, 10, 24)
    store.down = False
    with caplog.at_level("WARNING", logger="gemini.store"):
        assert writer.flush(timeout=5)
    assert store.count() == 10
    assert any("15 decisions dropped" in r.getMessage() for r in caplog.records)
    # the gap is closed and kept; new decisions flow again
    writer.record(decision(at=100.0))
    assert writer.close()
    assert store.count() == 11
    assert writer.stats().gaps == (gap,)
    assert store.decisions(limit=1)[0].at == decision(at=100.0).at
    assert gap.first_at > T0


def test_close_with_the_store_down_gives_up_and_says_so() -> None:
    store = OutageStore()
    store.down = True
    writer = BufferedWriter(store, flush_interval=0.01, retry_seconds=0.01)
    writer.record(decision())
    assert writer.close(timeout=0.2) is False


@pytest.mark.parametrize(
    ("kw", "msg"), [({"max_buffer": 0}, "max_buffer"), ({"batch_size": 0}, "batch_size")]
)
def test_bad_settings_are_refused(kw: dict[str, int], msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        BufferedWriter(MemoryStore(), **kw)


def test_retention_runs_on_the_writer_thread_by_the_given_clock() -> None:
    from datetime import timedelta

    from gemini.clock import ManualClock
    from gemini.store.buffered import Retention

    store = MemoryStore()
    store.write_many([decision(at=float(60 * i)) for i in range(10)])  # T0 .. T0+9 min
    clock = ManualClock(T0 + timedelta(minutes=12))
    writer = BufferedWriter(
        store,
        flush_interval=0.01,
        retention=Retention(max_age=timedelta(minutes=5), every_seconds=3600),
        clock=clock,
    )
    deadline = time.monotonic() + 5
    while writer.stats().pruned < 7 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.stats().pruned == 7  # older than T0+7min
    assert [d.at.minute for d in store.decisions()] == [9, 8, 7]
    clock.advance(timedelta(minutes=2))
    writer.prune_now()
    deadline = time.monotonic() + 5
    while writer.stats().pruned < 9 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [d.at.minute for d in store.decisions()] == [9]
    writer.close()


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        pytest.param({}, "set max_age and/or keep_last", id="empty"),
        pytest.param({"keep_last": 0}, "retention.keep_last: must be >= 1", id="keep-zero"),
        pytest.param(
            {"max_age": __import__("datetime").timedelta(0)}, "retention.max_age", id="age"
        ),
    ],
)
def test_bad_retention_names_the_field(kw: dict[str, object], msg: str) -> None:
    from gemini.store.buffered import Retention

    with pytest.raises(ValueError, match=msg):
        Retention(**kw)  # type: ignore[arg-type]
