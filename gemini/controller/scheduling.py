"""When each policy is evaluated, and which policies are evaluated together.

Owns the due times and the batching. Each policy is due on the instants of an APScheduler
`IntervalTrigger` anchored at the Unix epoch, so every policy with the same `intervalSeconds` (and
those whose intervals divide each other) is due at the very same instants and is evaluated as one
batch: one batched metric read for all of them. A policy created or edited after start-up is also
due at the next whole second, so changes take effect within seconds.

Why our own loop over APScheduler's triggers rather than `BackgroundScheduler`: the scheduler
would run one job per policy (no batching across policies), reads the wall clock itself (tests
and the demo need `ManualClock`), and its misfire/coalesce rules are per job. The trigger's
arithmetic is what we reuse.

The loop runs each due batch on a small coordinator pool; a policy whose previous evaluation is
still running when it is due again is counted as an overrun and evaluated once more as soon as
the running one ends (missed instants are coalesced, never queued up). Imports
APScheduler's triggers only; no Kubernetes, metric source or scaler.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.interval import IntervalTrigger

from gemini.clock import Clock

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

BatchRunner = Callable[[datetime, list[str]], None]


def next_due(interval_seconds: int, now: datetime, previous: datetime | None = None) -> datetime:
    """The first epoch-aligned instant of the interval at or after `now` (or after `previous`)."""
    trigger = IntervalTrigger(seconds=interval_seconds, start_date=EPOCH, timezone=UTC)
    nxt: datetime | None = trigger.get_next_fire_time(previous, now)
    assert nxt is not None
    return nxt.astimezone(UTC)


def next_second(now: datetime) -> datetime:
    whole = math.ceil(now.timestamp())
    return datetime.fromtimestamp(whole, UTC)


class Scheduler:
    """Due times per policy key; `run_due(now)` starts every batch that is due."""

    def __init__(
        self,
        clock: Clock,
        run_batch: BatchRunner,
        *,
        coordinators: int = 2,
        on_overrun: Callable[[str], None] | None = None,
    ) -> None:
        self._clock = clock
        self._run_batch = run_batch
        self._on_overrun = on_overrun
        self._lock = threading.Condition()
        self._intervals: dict[str, int] = {}
        self._due: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []
        self._inflight: set[str] = set()
        self._late: set[str] = set()  # due while still running: run again as soon as it ends
        self._pool = ThreadPoolExecutor(coordinators, thread_name_prefix="batch")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._active = 0
        self.overruns = 0
        self.batches = 0

    # -- membership ----------------------------------------------------------------------------

    def schedule(self, key: str, interval_seconds: int, *, soon: bool = False) -> None:
        """(Re)schedule `key`. `soon`: also due at the next whole second (a new or edited policy)."""
        now = self._clock.now()
        with self._lock:
            self._intervals[key] = interval_seconds
            due = next_second(now) if soon else next_due(interval_seconds, now)
            current = self._due.get(key)
            if current is None or due < current or current < now:
                self._due[key] = due
                heapq.heappush(self._heap, (due, key))
            self._lock.notify_all()

    def unschedule(self, key: str) -> None:
        with self._lock:
            self._intervals.pop(key, None)
            self._due.pop(key, None)
            self._lock.notify_all()

    def __len__(self) -> int:
        with self._lock:
            return len(self._intervals)

    def due_at(self, key: str) -> datetime | None:
        with self._lock:
            return self._due.get(key)

    # -- running -------------------------------------------------------------------------------

    def next_time(self) -> datetime | None:
        with self._lock:
            self._drop_stale_heads()
            return self._heap[0][0] if self._heap else None

    def _drop_stale_heads(self) -> None:
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)

    def take_due(self, now: datetime) -> list[tuple[datetime, list[str]]]:
        """Pop every due (instant, keys) group and schedule each key's next instant."""
        groups: dict[datetime, list[str]] = {}
        with self._lock:
            while True:
                self._drop_stale_heads()
                if not self._heap or self._heap[0][0] > now:
                    break
                due, key = heapq.heappop(self._heap)
                interval = self._intervals[key]
                nxt = next_due(interval, now + timedelta(microseconds=1))
                if nxt - due > timedelta(seconds=interval) * 1.5:
                    # We are behind by more than an interval: the missed instants are overruns.
                    self.overruns += 1
                    if self._on_overrun:
                        self._on_overrun(key)
                self._due[key] = nxt
                heapq.heappush(self._heap, (nxt, key))
                if key in self._inflight:
                    self.overruns += 1
                    self._late.add(key)
                    if self._on_overrun:
                        self._on_overrun(key)
                    continue
                groups.setdefault(due, []).append(key)
            for keys in groups.values():
                self._inflight.update(keys)
        return sorted(groups.items())

    def run_due(self, now: datetime | None = None, *, wait: bool = False) -> int:
        """Start every due batch (on the coordinator pool); with `wait`, until they finish."""
        groups = self.take_due(now or self._clock.now())
        futures = [self._pool.submit(self._run, due, keys) for due, keys in groups]
        if wait:
            for f in futures:
                f.result()
        return sum(len(keys) for _, keys in groups)

    def _run(self, due: datetime, keys: list[str]) -> None:
        with self._lock:
            self._active += 1
        try:
            self.batches += 1
            self._run_batch(due, keys)
        except Exception:
            log.exception("evaluation batch at %s failed", due)
        finally:
            with self._lock:
                self._inflight.difference_update(keys)
                late = self._late.intersection(keys)
                self._late.difference_update(late)
                if late and not self._stop.is_set():
                    # Coalesce the missed instant into one evaluation as soon as possible.
                    soon = next_second(self._clock.now())
                    for key in late:
                        if key in self._intervals and soon < self._due.get(key, soon):
                            self._due[key] = soon
                            heapq.heappush(self._heap, (soon, key))
                self._active -= 1
                self._lock.notify_all()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = self._clock.now()
            nxt = self.next_time()
            if nxt is not None and nxt <= now:
                self.run_due(now)
                continue
            # A clock that runs faster than the wall (the demo's ScaledClock has `speed`)
            # needs proportionally shorter waits, or batches would run late and coalesce.
            speed = float(getattr(self._clock, "speed", 1.0))
            wait = 1.0 if nxt is None else min(1.0, (nxt - now).total_seconds() / speed)
            with self._lock:
                if not self._stop.is_set():
                    self._lock.wait(max(wait, 0.001))

    def stop(self, timeout: float = 30.0) -> None:
        """Stop starting batches; wait (up to `timeout`) for the in-flight ones to finish."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self._lock.wait_for(lambda: self._active == 0, timeout=timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
