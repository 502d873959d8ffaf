"""Leader election on a `coordination.k8s.io/v1` Lease (client-go's algorithm, own code).

Owns: acquiring, renewing and releasing the Lease, and the answer to "may I act right now?".

- A candidate acquires the Lease when it is free (no holder) or when the holder's record has not
  changed for `lease_duration` as observed on this process's monotonic clock (no clock-skew trust
  in the holder's `renewTime`). Writes carry the `resourceVersion`, so of two candidates racing
  only one wins (409 Conflict for the other).
- The leader renews every `retry_period`. `is_leader()` is True only while the last successful
  renewal is younger than `renew_deadline` (< `lease_duration`): a leader that cannot renew stops
  acting before its Lease can expire and a standby can take over, so two replicas never scale at
  the same time.
- On graceful shutdown the leader releases the Lease (empty holder, 1 s duration) so the standby
  takes over at once.

Uses `time.monotonic` for timers (not a wall-clock timestamp); wall-clock stamps written into the
Lease come from the injected `Clock`. Imports the kubernetes client; no metric source or scaler.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gemini.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    namespace: str
    name: str = "gemini-controller"
    identity: str = "gemini"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    request_timeout: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retryPeriod < renewDeadline < leaseDuration, got "
                f"{self.retry_period}, {self.renew_deadline}, {self.lease_duration}"
            )


class LeaderElector:
    def __init__(
        self,
        coordination_api: Any,
        config: LeaseConfig,
        clock: Clock,
        *,
        on_started: Callable[[], None] | None = None,
        on_stopped: Callable[[], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = coordination_api
        self.config = config
        self._clock = clock
        self._mono = monotonic
        self._on_started = on_started
        self._on_stopped = on_stopped
        self._lock = threading.Lock()
        self._leading = False
        self._last_renew = -1e18  # monotonic time of the last successful acquire/renew
        self._observed: tuple[str | None, Any, str | None] | None = None  # holder, renew, rv
        self._observed_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.transitions = 0

    # -- queries -------------------------------------------------------------------------------

    def is_leader(self) -> bool:
        """True while this process may act: leading and renewed within the renew deadline."""
        with self._lock:
            return self._leading and self._mono() - self._last_renew < self.config.renew_deadline

    @property
    def holder(self) -> str | None:
        with self._lock:
            return self._observed[0] if self._observed else None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self, release: bool = True) -> None:
        """Stop campaigning; release the Lease if we hold it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.request_timeout + self.config.retry_period)
        was_leading = self._set_leading(False)
        if release and was_leading:
            try:
                self._release()
            except Exception as exc:
                log.warning("releasing the lease failed: %s", exc)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ok = self.try_acquire_or_renew()
            except Exception as exc:  # network errors: just a failed attempt
                log.warning("lease %s: %s", self.config.name, exc)
                ok = False
            if not ok and self._leading_expired():
                self._set_leading(False)
            elif ok:
                self._set_leading(True)
            self._stop.wait(self.config.retry_period)

    def _leading_expired(self) -> bool:
        with self._lock:
            return self._mono() - self._last_renew >= self.config.renew_deadline

    def _set_leading(self, leading: bool) -> bool:
        with self._lock:
            was = self._leading
            self._leading = leading
        if leading and not was:
            self.transitions += 1
            log.info("became leader (%s)", self.config.identity)
            if self._on_started:
                self._on_started()
        elif was and not leading:
            log.warning("stopped leading (%s)", self.config.identity)
            if self._on_stopped:
                self._on_stopped()
        return was

    # -- one attempt ---------------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when we hold the Lease afterwards."""
        from kubernetes.client import V1Lease, V1LeaseSpec, V1ObjectMeta
        from kubernetes.client.exceptions import ApiException

        cfg = self.config
        started = self._mono()
        now = self._clock.now()
        try:
            lease = self._api.read_namespaced_lease(
                cfg.name, cfg.namespace, _request_timeout=cfg.request_timeout
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = V1Lease(
                metadata=V1ObjectMeta(name=cfg.name, namespace=cfg.namespace),
                spec=V1LeaseSpec(
                    holder_identity=cfg.identity,
                    lease_duration_seconds=int(cfg.lease_duration + 0.999),
                    acquire_time=now,
                    renew_time=now,
                    lease_transitions=0,
                ),
            )
            try:
                created = self._api.create_namespaced_lease(
                    cfg.namespace, body, _request_timeout=cfg.request_timeout
                )
            except ApiException as exc2:
                if exc2.status == 409:
                    return False
                raise
            self._observe(created, started)
            self._renewed(started)
            return True

        spec = lease.spec or V1LeaseSpec()
        record = (spec.holder_identity, spec.renew_time, lease.metadata.resource_version)
        if self._observed is None or self._observed != record:
            self._observe(lease, started)
        holder = spec.holder_identity or None
        duration = float(spec.lease_duration_seconds or cfg.lease_duration)
        held_by_other = holder is not None and holder != cfg.identity
        if held_by_other and self._mono() - self._observed_at < duration:
            return False
        new_spec = V1LeaseSpec(
            holder_identity=cfg.identity,
            lease_duration_seconds=int(cfg.lease_duration + 0.999),
            acquire_time=spec.acquire_time if holder == cfg.identity else now,
            renew_time=now,
            lease_transitions=(spec.lease_transitions or 0) + (0 if holder == cfg.identity else 1),
        )
        lease.spec = new_spec
        try:
            updated = self._api.replace_namespaced_lease(
                cfg.name, cfg.namespace, lease, _request_timeout=cfg.request_timeout
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        # A renewal that took longer than the renew deadline does not count.
        if self._mono() - started >= cfg.renew_deadline:
            return False
        self._observe(updated, started)
        self._renewed(started)
        return True

    def _observe(self, lease: Any, at: float) -> None:
        spec = lease.spec
        with self._lock:
            self._observed = (
                spec.holder_identity if spec else None,
                spec.renew_time if spec else None,
                lease.metadata.resource_version,
            )
            self._observed_at = at

    def _renewed(self, started: float) -> None:
        with self._lock:
            # Count from when the attempt started: the server may have accepted it any time after.
            self._last_renew = started

    def _release(self) -> None:
        from kubernetes.client import V1LeaseSpec

        cfg = self.config
        lease = self._api.read_namespaced_lease(
            cfg.name, cfg.namespace, _request_timeout=cfg.request_timeout
        )
        if lease.spec is None or lease.spec.holder_identity != cfg.identity:
            return
        now = self._clock.now()
        lease.spec = V1LeaseSpec(
            holder_identity=None,
            lease_duration_seconds=1,
            acquire_time=now,
            renew_time=now,
            lease_transitions=lease.spec.lease_transitions,
        )
        self._api.replace_namespaced_lease(
            cfg.name, cfg.namespace, lease, _request_timeout=cfg.request_timeout
        )
        log.info("released lease %s/%s", cfg.namespace, cfg.name)
