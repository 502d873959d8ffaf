"""The controller: cache + watch + scheduler + leader election + status + events + telemetry.

Owns how one due batch is evaluated:

1. only the acting leader evaluates; a standby keeps its cache warm and stays ready;
2. invalid policies are not evaluated (they carry `SpecInvalid`); of several policies on the same
   target the oldest wins and the others get `TargetConflict`;
3. the scaler may read many targets at once first (`prefetch`: one LIST per namespace and kind
   for Kubernetes workloads); then every target's capacity is read in parallel on a bounded
   worker pool with a deadline (from the prefetched objects where there are some);
4. the metrics of the whole batch are read in ONE `MetricReader.read` call (sources batch and
   deduplicate across policies), under a deadline, alongside the target reads;
5. each policy then runs `gemini.loop.tick_batch` on those prefetched inputs: on the batch's
   own thread, one after another (deciding is pure and fast), except that a tick which must
   apply is handed to a worker, so a slow apply delays only its own policy. Each tick feeds
   `/metrics`, one structured log event and the decision store (sinks must not block: the
   store's `BufferedWriter` only queues); status (merge patch) and Events then go to the workers.

The state a tick returns is kept in the cache at once and written to `status.state`, from which a
restarted or failed-over controller restores it. Imports the controller's modules, the loop and
the protocols; concrete sources and scalers are injected (see `commands`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from gemini import loop
from gemini.clock import Clock, iso
from gemini.controller import status as status_mod
from gemini.controller.cache import Entry, PolicyCache
from gemini.controller.events import EventRecorder
from gemini.controller.leader import LeaderElector
from gemini.controller.scheduling import Scheduler
from gemini.controller.status import StatusWriter
from gemini.controller.telemetry import Telemetry
from gemini.controller.watch import PolicyWatcher
from gemini.errors import ScaleError
from gemini.metrics import MetricReader, MetricRequest
from gemini.policy.decision import Capacity, MetricStatus
from gemini.policy.spec import ScalingPolicy
from gemini.scalers import ApplyResult, ApplyStatus, Scaler, TargetRef
from gemini.series import Observation

log = logging.getLogger(__name__)
slog = structlog.get_logger("gemini.controller")


@dataclass(frozen=True, slots=True)
class Deadlines:
    capacity_seconds: float = 10.0
    metrics_seconds: float = 20.0
    apply_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class BatchTiming:
    """Where one batch's time went, in seconds after its due instant."""

    due: datetime
    size: int
    started: float  # the batch began (schedule lag)
    targets_read: float  # every target's capacity was read (or cut off by its deadline)
    metrics_read: float  # the batch's metric read returned
    decided: float  # every policy was decided and applied
    done: float  # every Event and status write was made


class _ApplyNeeded(BaseException):
    """Raised by an inline `_Prefetched` where a tick would call the scaler: the tick is then run
    again on a worker. A BaseException, so `loop` passes it through (it turns Exceptions from
    `apply` into results); nothing is kept from the aborted run (deciding is pure)."""


class _Prefetched:
    """A reader and scaler over inputs read before the per-policy ticks (see module doc).

    `inline`: ticks run on the batch's own thread, one after the other (deciding is pure and
    takes well under a millisecond); a tick that must apply raises `_ApplyNeeded` instead of
    blocking that thread on the API, and is run again on a worker with an `inline=False` copy.
    """

    def __init__(
        self,
        capacities: Mapping[str, Capacity | ScaleError],
        observations: Mapping[tuple[str, str], Observation],
        scaler: Scaler,
        may_act: Callable[[], bool],
        pool: ThreadPoolExecutor,  # runs the applies (not the pool the ticks run on)
        apply_deadline: float,
        *,
        inline: bool = False,
    ) -> None:
        self.inline = inline
        self.capacities = capacities
        self._caps = capacities
        self._obs = observations
        self._scaler = scaler
        self._may_act = may_act
        self._pool = pool
        self._deadline = apply_deadline

    def read(self, requests: Sequence[MetricRequest], now: datetime) -> list[Observation]:
        return [
            self._obs.get(
                (r.policy, r.metric.name),
                Observation.failed(r.metric.name, "error", "not read in this batch"),
            )
            for r in requests
        ]

    def capacity(self, ref: TargetRef, now: datetime) -> Capacity:
        cap = self._caps[ref.policy]
        if isinstance(cap, ScaleError):
            raise cap
        return cap

    def on_workers(self) -> _Prefetched:
        return _Prefetched(
            self._caps, self._obs, self._scaler, self._may_act, self._pool, self._deadline
        )

    def apply(self, ref: TargetRef, desired: int, now: datetime) -> ApplyResult:
        if self.inline:
            raise _ApplyNeeded
        cap = self._caps[ref.policy]
        current = cap.current if isinstance(cap, Capacity) else desired
        if not self._may_act():
            return ApplyResult(ApplyStatus.REFUSED, current, "NotLeader", "lost leadership")
        # On the apply pool (reused threads; we already are on a worker of the other pool);
        # the deadline guards a hung call: one not started by then never starts.
        fut = self._pool.submit(self._scaler.apply, ref, desired, now)
        try:
            return fut.result(timeout=self._deadline)
        except FutureTimeout:
            fut.cancel()
            return ApplyResult(
                ApplyStatus.FAILED,
                current,
                "ApplyDeadlineExceeded",
                f"no answer within {self._deadline:g}s",
            )


class Controller:
    def __init__(
        self,
        *,
        custom_api: Any,
        core_api: Any | None,
        reader: MetricReader,
        scaler: Scaler,
        clock: Clock,
        elector: LeaderElector | None = None,
        namespaces: list[str] | None = None,
        sink: loop.DecisionSink | None = None,
        workers: int = 16,
        deadlines: Deadlines = Deadlines(),
        watch_timeout_seconds: int = 300,
        identity: str = "gemini",
        status_refresh_seconds: float = 60.0,
        invalid_retry_seconds: float = 5.0,
    ) -> None:
        self.clock = clock
        self.cache = PolicyCache()
        self.telemetry = Telemetry()
        self.reader = reader
        self.scaler = scaler
        self.elector = elector
        self.sink = sink
        self.deadlines = deadlines
        self.status_writer = StatusWriter(custom_api)
        self.events = (
            EventRecorder(core_api, clock, host=identity) if core_api is not None else None
        )
        self.workers = workers
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="eval")
        # Applies run here, each under its deadline, waited for by a worker of `pool`; a hung
        # one holds a thread of this pool only.
        self.apply_pool = ThreadPoolExecutor(workers * 2, thread_name_prefix="apply")
        self.scheduler = Scheduler(
            clock, self.run_batch, on_overrun=lambda _k: self.telemetry.overruns.inc()
        )
        self.watcher = PolicyWatcher(
            custom_api,
            self.cache,
            namespaces,
            watch_timeout_seconds=watch_timeout_seconds,
            on_restart=lambda cause: self.telemetry.watch_restarts.labels(cause).inc(),
        )
        self.cache.subscribe(self._on_change)
        self._invalid_reported: dict[str, tuple[int | None, str]] = {}
        # A failed SpecInvalid status write is retried after these many seconds, doubling.
        self.invalid_retry_seconds = invalid_retry_seconds
        self.invalid_retry_max_seconds = 300.0
        self._invalid_retries: dict[str, int] = {}
        self._invalid_timers: dict[str, threading.Timer] = {}
        self._stopping = False
        # Status writes: at once when anything visible changed, else every refresh interval.
        self.status_refresh_seconds = status_refresh_seconds
        self._written: dict[str, tuple[Any, datetime]] = {}
        self.status_writes = 0
        self.status_skipped = 0
        self._lock = threading.Lock()
        self.evaluations = 0
        self.lags: list[float] = []  # seconds behind schedule per batch start (bounded below)
        self.done_lags: list[float] = []  # seconds from due time to a policy's tick being done
        self.decided_lags: list[float] = []  # ... to its decision being made (and applied)
        self.timings: list[BatchTiming] = []  # the most recent batches (bounded)
        self._started = False

    # -- leadership ----------------------------------------------------------------------------

    def is_leader(self) -> bool:
        return True if self.elector is None else self.elector.is_leader()

    def on_started_leading(self) -> None:
        self.telemetry.leader.set(1)
        # Another leader may have written every status since we last did: what we remember
        # having written says nothing about the objects now, so the first tick writes again.
        self._written.clear()
        # Report invalid policies we have not reported as leader yet.
        for entry in self.cache.entries():
            if entry.error is not None:
                self.pool.submit(self._report_invalid, entry)

    def on_stopped_leading(self) -> None:
        self.telemetry.leader.set(0)
        self.cache.disown_all()

    # -- cache changes -------------------------------------------------------------------------

    def _on_change(self, key: str, old: Entry | None, new: Entry | None) -> None:
        for entry, delta in ((old, -1), (new, 1)):
            if entry is not None:
                self.telemetry.policies.labels("valid" if entry.policy else "invalid").inc(delta)
        if new is None:
            self.scheduler.unschedule(key)
            if old is not None:
                self.telemetry.forget(old.namespace, old.name)
            self._invalid_reported.pop(key, None)
            self._written.pop(key, None)
            with self._lock:
                self._invalid_retries.pop(key, None)
                timer = self._invalid_timers.pop(key, None)
            if timer is not None:
                timer.cancel()
            return
        if new.error is not None or new.policy is None:
            self.scheduler.unschedule(key)
            if self.is_leader():
                self.pool.submit(self._report_invalid, new)
            return
        with self._lock:
            self._invalid_retries.pop(key, None)  # valid now: a later failure starts afresh
        changed = old is None or old.generation != new.generation or old.policy is None
        if not changed:
            return
        # New or edited after the initial sync: evaluate within a second, then on the interval.
        soon = self.watcher.synced.is_set()
        self.scheduler.schedule(key, new.interval_seconds, soon=soon)

    def _report_invalid(self, entry: Entry) -> None:
        assert entry.error is not None
        message = "; ".join(f"{p or '<root>'}: {m}" for p, m in entry.error.problems)
        marker = (entry.generation, message)
        if self._invalid_reported.get(entry.key) == marker:
            return
        conds = entry.status.get("conditions") or []
        already = entry.status.get("observedGeneration") == entry.generation and any(
            c.get("type") == status_mod.SPEC_INVALID
            and c.get("status") == "True"
            and c.get("message") == message
            for c in conds
            if isinstance(c, Mapping)
        )
        self._invalid_reported[entry.key] = marker
        if already:
            return
        now = self.clock.now()
        body = status_mod.invalid_status(entry.status, entry.generation, entry.error, now)
        try:
            self.status_writer.patch(entry.namespace, entry.name, body)
        except Exception as exc:
            # Nothing else would bring this back (the policy is not evaluated, and no watch
            # event follows a failed write): try again later, with backoff.
            self.telemetry.errors.labels("status_write").inc()
            log.warning("status of %s not written: %s", entry.key, exc)
            self._invalid_reported.pop(entry.key, None)
            self._retry_invalid_later(entry.key)
        else:
            self._invalid_retries.pop(entry.key, None)
        self._event(entry, "Warning", "SpecInvalid", message)
        slog.warning("policy invalid", policy=entry.key, problems=entry.error.problems)

    def _retry_invalid_later(self, key: str) -> None:
        with self._lock:
            attempt = self._invalid_retries.get(key, 0)
            self._invalid_retries[key] = attempt + 1
            if self._stopping:
                return
            delay = min(self.invalid_retry_max_seconds, self.invalid_retry_seconds * 2**attempt)
            timer = threading.Timer(delay, self._retry_invalid, (key,))
            timer.daemon = True
            old = self._invalid_timers.pop(key, None)
            self._invalid_timers[key] = timer
        if old is not None:
            old.cancel()
        timer.start()

    def _retry_invalid(self, key: str) -> None:
        with self._lock:
            self._invalid_timers.pop(key, None)
            if self._stopping:
                return
        entry = self.cache.get(key)
        if entry is not None and entry.error is not None and self.is_leader():
            with contextlib.suppress(RuntimeError):  # the pool shut down: we are stopping
                self.pool.submit(self._report_invalid, entry)

    # -- evaluation ----------------------------------------------------------------------------

    def run_batch(self, due: datetime, keys: list[str]) -> None:
        if not self.is_leader():
            return
        started = self.clock.now()
        lag = (started - due).total_seconds()
        self.telemetry.lag.observe(max(lag, 0.0))
        with self._lock:
            self.lags.append(lag)
            if len(self.lags) > 100_000:
                del self.lags[: len(self.lags) // 2]
        entries = [e for k in keys if (e := self.cache.get(k)) is not None and e.policy is not None]
        entries = self._resolve_conflicts(entries, started)
        if not entries:
            return
        with self.telemetry.latency.time():
            self.telemetry.batch_size.observe(len(entries))
            metrics = self._start_metrics(entries, started)
            caps = self._read_capacities(entries, started)
            targets_read = self._since(due)
            observations, metrics_done = metrics()
            metrics_read = (metrics_done - due).total_seconds()
            inline = _Prefetched(
                caps,
                observations,
                self.scaler,
                self.is_leader,
                self.apply_pool,
                self.deadlines.apply_seconds,
                inline=True,
            )
            # Decide everything on this thread; only the ticks that apply go to the workers
            # (each waits on the API). Events and status writes (the bulk of the API calls after
            # a start or a wave of changes) queue behind the decisions and applies.
            pending: list[_Report] = []
            ticks: list[Future[_Report | None]] = []
            for e in entries:
                try:
                    report = self._tick_one(e, inline, started, due)
                except _ApplyNeeded:
                    ticks.append(
                        self.pool.submit(self._tick_one, e, inline.on_workers(), started, due)
                    )
                    continue
                except Exception:
                    log.exception("evaluation of %s failed", e.key)
                    self.telemetry.errors.labels("internal").inc()
                    continue
                if report is not None:
                    pending.append(report)
            wait(ticks)
            decided = self._since(due)
            pending += [r for f in ticks if f.exception() is None and (r := f.result())]
            reports = [self.pool.submit(self._report, *r) for r in pending]
            wait(reports)
            timing = BatchTiming(
                due, len(entries), lag, targets_read, metrics_read, decided, self._since(due)
            )
            with self._lock:
                self.timings.append(timing)
                if len(self.timings) > 1000:
                    del self.timings[:500]
            every: list[Future[Any]] = [*ticks, *reports]
            for f in every:
                if f.exception() is not None:
                    log.error("evaluation failed", exc_info=f.exception())
                    self.telemetry.errors.labels("internal").inc()

    def _since(self, due: datetime) -> float:
        return (self.clock.now() - due).total_seconds()

    def _resolve_conflicts(self, entries: list[Entry], now: datetime) -> list[Entry]:
        """Of several policies on one target, the oldest (then by name) acts."""
        owners: dict[str, Entry] = {}
        for e in sorted(self.cache.entries(), key=_age_key):
            if e.policy is None:
                continue
            owners.setdefault(_target_id(e.policy), e)
        out = []
        for e in entries:
            assert e.policy is not None
            owner = owners.get(_target_id(e.policy))
            if owner is not None and owner.key != e.key:
                self.pool.submit(self._report_conflict, e, owner, now)
                continue
            out.append(e)
        return out

    def _report_conflict(self, entry: Entry, owner: Entry, now: datetime) -> None:
        assert entry.policy is not None
        target = entry.policy.spec.target.describe()
        body = status_mod.conflict_status(entry.status, entry.generation, owner.key, target, now)
        self._write_status(entry, body)
        self._event(
            entry,
            "Warning",
            "TargetConflict",
            f"{target} is already scaled by ScalingPolicy {owner.key}",
        )

    def _read_capacities(
        self, entries: list[Entry], now: datetime
    ) -> dict[str, Capacity | ScaleError]:
        """All targets' capacity in parallel, under one deadline. One policy per namespace goes
        first so that per-namespace lookups the scaler caches (HPA lists) are made once, not by
        every worker at the same moment."""
        deadline = time.monotonic() + self.deadlines.capacity_seconds
        prefetch = getattr(self.scaler, "prefetch", None)
        if prefetch is not None:
            # Many targets in one read (a LIST per namespace and kind) where the scaler can; the
            # rest, and anything it could not list, are read one by one below.
            refs = [loop.target_ref(_pol(e)) for e in entries]
            early = self.pool.submit(prefetch, refs, now)
            wait([early], timeout=self.deadlines.capacity_seconds / 2)
            if early.done() and early.exception() is not None:
                log.warning("prefetching targets failed: %s", early.exception())
        # Each target's read, kept as it ends (what is still missing at the deadline is late).
        got: dict[str, Capacity | ScaleError] = {}

        def read(e: Entry) -> None:
            try:
                cap: Capacity | ScaleError = self.scaler.capacity(loop.target_ref(_pol(e)), now)
            except ScaleError as exc:
                cap = exc
            except Exception as exc:
                cap = ScaleError(f"reading the target failed: {exc}", "FailedGetScale")
            got[e.key] = cap

        first: dict[str, Entry] = {}
        for e in entries:
            first.setdefault(e.namespace, e)
        firsts = [self.pool.submit(read, e) for e in first.values()]
        wait(firsts, timeout=self.deadlines.capacity_seconds)
        rest = iter([e for e in entries if first[e.namespace] is not e])
        taking = threading.Lock()
        stop = threading.Event()

        def drain() -> None:
            # Workers take the next target from one shared queue: most reads are lookups in what
            # `prefetch` listed, where a future per target would cost more than the read, and a
            # hung GET holds one worker while the others go on.
            while not stop.is_set():
                with taking:
                    e = next(rest, None)
                if e is None:
                    return
                read(e)

        drains = [self.pool.submit(drain) for _ in range(self.workers)]
        wait(drains, timeout=max(0.0, deadline - time.monotonic()))
        stop.set()  # past the deadline: nothing more is started
        for f in firsts:
            f.cancel()  # (one still queued behind other work)
        out: dict[str, Capacity | ScaleError] = {}
        late = ScaleError(
            f"reading the target took longer than {self.deadlines.capacity_seconds:g}s",
            "FailedGetScale",
        )
        for e in entries:
            out[e.key] = got.get(e.key, late)
        return out

    def _start_metrics(
        self, entries: list[Entry], now: datetime
    ) -> Callable[[], tuple[dict[tuple[str, str], Observation], datetime]]:
        """Start the batch's one metric read on its own thread (it runs while the targets are
        read, and never queues behind them); the returned function waits for it, up to the
        metrics deadline, turns a failure or a timeout into failed observations, and tells
        when the read ended (or was given up)."""
        requests: list[MetricRequest] = [r for e in entries for r in loop.requests_for(_pol(e))]
        box: list[list[Observation] | BaseException] = []
        done = threading.Event()
        ended: list[datetime] = []
        deadline = time.monotonic() + self.deadlines.metrics_seconds

        def run() -> None:
            try:
                box.append(self.reader.read(requests, now))
            except BaseException as exc:
                box.append(exc)
            finally:
                ended.append(self.clock.now())
                done.set()

        if requests:
            threading.Thread(target=run, name="metrics-read", daemon=True).start()
        else:
            ended.append(now)
            done.set()
            box.append([])

        def result() -> tuple[dict[tuple[str, str], Observation], datetime]:
            observations: list[Observation]
            if not done.wait(max(0.0, deadline - time.monotonic())):
                msg = f"metric read took longer than {self.deadlines.metrics_seconds:g}s"
                observations = [
                    Observation.failed(r.metric.name, "deadline", msg) for r in requests
                ]
            elif isinstance(box[0], BaseException):
                err = str(box[0])
                observations = [Observation.failed(r.metric.name, "error", err) for r in requests]
            else:
                observations = box[0]
            by_key = {
                (r.policy, r.metric.name): o for r, o in zip(requests, observations, strict=True)
            }
            return by_key, ended[0] if ended else self.clock.now()

        return result

    def _tick_one(
        self, entry: Entry, pre: _Prefetched, now: datetime, due: datetime
    ) -> _Report | None:
        """Decide (and apply); returns what to report (Events, status) for this tick."""
        policy = _pol(entry)
        [result] = loop.tick_batch([(policy, entry.state)], reader=pre, scaler=pre, now=now)
        decided = (self.clock.now() - due).total_seconds()
        if not self.is_leader():
            return None  # lost the lease mid-batch: write nothing, keep nothing
        with self._lock:
            self.evaluations += 1
        self.cache.set_state(entry.key, result.state)
        if self.sink is not None and result.decision is not None:
            try:
                self.sink.record(result.decision)
            except Exception as exc:
                self.telemetry.errors.labels("store").inc()
                log.warning("recording decision failed: %s", exc)
        self.telemetry.observe(entry.namespace, entry.name, result)
        self._log(entry, policy, result)
        cap = pre.capacities.get(entry.key)
        blocked = str(cap.detail.get("conflict") or "") if isinstance(cap, Capacity) else ""
        return (entry, policy, result, blocked, now, due, decided)

    def _report(
        self,
        entry: Entry,
        policy: ScalingPolicy,
        result: loop.TickResult,
        blocked: str,
        now: datetime,
        due: datetime,
        decided: float,
    ) -> None:
        if not self.is_leader():
            return
        self._emit_events(entry, result, blocked)
        current = self.cache.get(entry.key) or entry
        body = status_mod.tick_status(
            current.status,
            entry.generation,
            result,
            now,
            target=policy.spec.target.describe(),
            blocked_message=blocked,
        )
        visible = status_mod.visible_key(body)
        last = self._written.get(entry.key)
        if (
            last is not None
            and last[0] == visible
            and (now - last[1]).total_seconds() < self.status_refresh_seconds
        ):
            self.status_skipped += 1
        else:
            returned = self._write_status(entry, body)
            self.status_writes += 1
            if returned is not None:
                self._written[entry.key] = (visible, now)
                self.cache.set_state(entry.key, result.state, returned)
        done = (self.clock.now() - due).total_seconds()
        with self._lock:
            self.done_lags.append(done)
            self.decided_lags.append(decided)
            if len(self.done_lags) > 200_000:
                del self.done_lags[: len(self.done_lags) // 2]
                del self.decided_lags[: len(self.decided_lags) // 2]

    def _write_status(self, entry: Entry, body: Mapping[str, Any]) -> Mapping[str, Any] | None:
        try:
            return self.status_writer.patch(entry.namespace, entry.name, body)
        except Exception as exc:
            self.telemetry.errors.labels("status_write").inc()
            log.warning("status of %s not written: %s", entry.key, exc)
            return None

    def _event(self, entry: Entry, kind: str, reason: str, message: str) -> None:
        if self.events is None:
            return
        uid = entry.raw.get("metadata", {}).get("uid")
        self.events.emit(entry.namespace, entry.name, uid, kind, reason, message)

    def _emit_events(self, entry: Entry, result: loop.TickResult, blocked: str = "") -> None:
        d = result.decision
        if d is None:
            self._event(entry, "Warning", "FailedGetScale", result.error_message or "")
            return
        if d.applied:
            reasons = ", ".join(d.reasons)
            self._event(
                entry,
                "Normal",
                "SuccessfulRescale",
                f"New size: {result.apply.replicas if result.apply else d.desired}; "
                f"reason: {reasons}",
            )
        elif d.outcome in {"failed", "conflict"}:
            msg = result.apply.message if result.apply else ""
            self._event(
                entry,
                "Warning",
                "FailedRescale",
                f"New size: {d.desired}; reason: {result.apply.reason if result.apply else ''}; "
                f"error: {msg}",
            )
        elif d.outcome == "refused" and (
            result.apply is None or result.apply.reason != "NotLeader"
        ):
            why = result.apply.message or result.apply.reason if result.apply else blocked
            self._event(entry, "Warning", "TargetConflict", why or "the scaler will not act")
        bad = [m for m in d.metrics if m.status is not MetricStatus.OK]
        for m in bad:
            self._event(
                entry,
                "Warning",
                "FailedGetMetrics",
                f"metric {m.name}: {m.status.value}{': ' + m.error if m.error else ''}",
            )

    def _log(self, entry: Entry, policy: ScalingPolicy, result: loop.TickResult) -> None:
        bound = slog.bind(policy=entry.key, target=policy.spec.target.describe())
        d = result.decision
        if d is None:
            bound.warning("target unreadable", error=result.error, message=result.error_message)
            return
        bound.info(
            "decision",
            current=d.current,
            desired=d.desired,
            applied=d.applied,
            outcome=d.outcome,
            reasons=list(d.reasons),
            metrics={
                m.name: {"value": m.value, "age": m.age_seconds, "status": m.status.value}
                for m in d.metrics
            },
            at=iso(d.at),
        )

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.watcher.synced.is_set()

    def start(self) -> None:
        self._started = True
        self.watcher.start()
        self.scheduler.start()
        if self.elector is not None:
            self.elector.start()
        else:
            self.on_started_leading()

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful: stop watching and scheduling, finish in-flight ticks, release the lease."""
        with self._lock:
            self._stopping = True
            timers = list(self._invalid_timers.values())
            self._invalid_timers.clear()
        for timer in timers:
            timer.cancel()
        self.watcher.stop(timeout=min(5.0, timeout))
        self.scheduler.stop(timeout=timeout)
        self.pool.shutdown(wait=True, cancel_futures=False)
        self.apply_pool.shutdown(wait=False, cancel_futures=True)
        if self.elector is not None:
            self.elector.stop(release=True)


_Report = tuple[Entry, ScalingPolicy, loop.TickResult, str, datetime, datetime, float]


def _pol(entry: Entry) -> ScalingPolicy:
    assert entry.policy is not None
    return entry.policy


def _age_key(entry: Entry) -> tuple[str, str]:
    created = entry.raw.get("metadata", {}).get("creationTimestamp") or "9999"
    return (str(created), entry.key)


def _target_id(policy: ScalingPolicy) -> str:
    t = policy.spec.target
    if t.kubernetes is not None:
        k = t.kubernetes
        group = k.api_version.split("/")[0] if "/" in k.api_version else ""
        return f"k8s:{policy.metadata.namespace}/{group}/{k.kind}/{k.name}"
    assert t.bigtable is not None
    b = t.bigtable
    return f"bigtable:{b.project}/{b.instance}/{b.cluster}"
