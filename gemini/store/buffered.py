"""`BufferedWriter`: the decision sink the evaluation loop calls; never blocks on the store.

`record()` appends to a bounded in-memory buffer and returns (microseconds); a background thread
writes batches with `DecisionStore.write_many`. When the store is down the batch is retried with
backoff; when the buffer is full new decisions are dropped and counted, and the gap (how many,
first and last decision time lost) is logged when the store comes back and exposed by `stats()`.
Scaling never waits for, or fails because of, the store. With `retention=`, the same thread also
prunes the store (by age and/or count) every `retention.every_seconds`, using the given `Clock`.
Must not import `gemini.metrics`, `gemini.scalers` or `gemini.dashboard`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from gemini.clock import Clock, SystemClock
from gemini.policy.decision import Decision
from gemini.store import DecisionStore

log = logging.getLogger("gemini.store")


@dataclass(frozen=True, slots=True)
class Gap:
    """Decisions that were dropped because the buffer was full."""

    dropped: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True, slots=True)
class Retention:
    """Keep decisions newer than `max_age` and at most `keep_last` per policy."""

    max_age: timedelta | None = None
    keep_last: int | None = None
    every_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_age is None and self.keep_last is None:
            raise ValueError("retention: set max_age and/or keep_last")
        if self.max_age is not None and self.max_age <= timedelta(0):
            raise ValueError(f"retention.max_age: must be positive, got {self.max_age}")
        if self.keep_last is not None and self.keep_last < 1:
            raise ValueError(f"retention.keep_last: must be >= 1, got {self.keep_last}")


@dataclass(frozen=True, slots=True)
class WriterStats:
    buffered: int
    written: int
    dropped: int
    write_failures: int
    last_error: str | None
    healthy: bool
    gaps: tuple[Gap, ...]
    pruned: int = 0


class BufferedWriter:
    """Thread-safe `DecisionSink` over a `DecisionStore`.

    `max_buffer`: decisions held while the store is slow or down; `batch_size`: decisions per
    transaction; `flush_interval`: how long a partial batch may wait; `retry_seconds`: first
    backoff after a failed write (doubles up to `max_retry_seconds`).
    """

    def __init__(
        self,
        store: DecisionStore,
        *,
        max_buffer: int = 100_000,
        batch_size: int = 1000,
        flush_interval: float = 0.5,
        retry_seconds: float = 0.5,
        max_retry_seconds: float = 30.0,
        retention: Retention | None = None,
        clock: Clock | None = None,
    ) -> None:
        if max_buffer < 1 or batch_size < 1:
            raise ValueError("max_buffer and batch_size must be >= 1")
        self.store = store
        self.max_buffer = max_buffer
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self._buf: deque[Decision] = deque()
        self._cond = threading.Condition()
        self._inflight = 0
        self._written = 0
        self._dropped = 0
        self._failures = 0
        self._last_error: str | None = None
        self._healthy = True
        self._gaps: list[Gap] = []
        self._open_gap: Gap | None = None
        self._stopping = False
        self._flushing = False
        self.retention = retention
        self.clock: Clock = clock or SystemClock()
        self._pruned = 0
        self._next_prune = 0.0  # monotonic; prune soon after start
        self._thread = threading.Thread(target=self._run, name="gemini-store-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ the loop's side

    def record(self, decision: Decision) -> None:
        with self._cond:
            if len(self._buf) + self._inflight >= self.max_buffer:
                self._drop(decision)
                return
            self._buf.append(decision)
            if len(self._buf) >= self.batch_size:
                self._cond.notify()

    def _drop(self, d: Decision) -> None:
        self._dropped += 1
        g = self._open_gap
        if g is None:
            self._open_gap = Gap(1, d.at, d.at)
            log.warning("decision buffer full (%d); dropping decisions", self.max_buffer)
        else:
            self._open_gap = Gap(g.dropped + 1, min(g.first_at, d.at), max(g.last_at, d.at))

    def stats(self) -> WriterStats:
        with self._cond:
            gaps = tuple(self._gaps) + ((self._open_gap,) if self._open_gap else ())
            return WriterStats(
                buffered=len(self._buf) + self._inflight,
                written=self._written,
                dropped=self._dropped,
                write_failures=self._failures,
                last_error=self._last_error,
                healthy=self._healthy,
                gaps=gaps,
                pruned=self._pruned,
            )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything recorded so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing = True
            self._cond.notify_all()
            while self._buf or self._inflight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
                self._cond.notify_all()
            return True

    def close(self, timeout: float = 10.0) -> bool:
        """Flush, stop the thread. Returns False if some decisions could not be written."""
        done = self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return done

    # ------------------------------------------------------------ the writer thread

    def _maybe_prune(self) -> None:
        r = self.retention
        if r is None or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + r.every_seconds
        cutoff = self.clock.now() - r.max_age if r.max_age is not None else None
        try:
            n = self.store.prune(older_than=cutoff, keep_last=r.keep_last)
        except Exception as exc:  # retention is best effort; the next round retries
            log.warning("decision store retention failed: %s: %s", type(exc).__name__, exc)
            return
        with self._cond:
            self._pruned += n

    def prune_now(self) -> None:
        """Run retention on the writer thread at its next wake-up (tests, admin)."""
        with self._cond:
            self._next_prune = 0.0
            self._cond.notify_all()

    def _run(self) -> None:
        backoff = self.retry_seconds
        while True:
            self._maybe_prune()
            with self._cond:
                self._cond.wait_for(
                    lambda: len(self._buf) >= self.batch_size or self._stopping or self._flushing,
                    self.flush_interval,
                )
                if not self._buf:
                    self._flushing = False
                    if self._stopping:
                        return
                    continue
                n = min(self.batch_size, len(self._buf))
                batch = [self._buf.popleft() for _ in range(n)]
                self._inflight = n
            try:
                self.store.write_many(batch)
            except Exception as exc:
                with self._cond:
                    self._buf.extendleft(reversed(batch))
                    self._inflight = 0
                    self._failures += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    if self._healthy:
                        log.warning("decision store write failed, buffering: %s", self._last_error)
                    self._healthy = False
                    if self._stopping:
                        return
                    self._cond.wait(backoff)
                backoff = min(backoff * 2, self.max_retry_seconds)
                continue
            backoff = self.retry_seconds
            with self._cond:
                self._inflight = 0
                self._written += n
                if not self._healthy:
                    log.warning("decision store recovered")
                self._healthy = True
                if self._open_gap is not None and len(self._buf) < self.max_buffer:
                    g = self._open_gap
                    log.warning(
                        "decision store gap: %d decisions dropped between %s and %s",
                        g.dropped,
                        g.first_at.isoformat(),
                        g.last_at.isoformat(),
                    )
                    self._gaps.append(g)
                    self._open_gap = None
                self._cond.notify_all()
