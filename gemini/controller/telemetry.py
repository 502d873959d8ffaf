"""The controller's Prometheus series (`gemini_*`), on a registry of its own.

Owns the metric names and labels and how a tick's result updates them. One registry per
controller instance, so several controllers in one process (tests) do not collide. Imports
prometheus-client only.
"""

from __future__ import annotations

import contextlib
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gemini.loop import TickResult

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Telemetry:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        pol = ["namespace", "policy"]
        self.desired = Gauge(
            "gemini_desired_capacity",
            "Desired replicas/nodes of the last decision.",
            pol,
            registry=r,
        )
        self.current = Gauge(
            "gemini_current_capacity",
            "Current replicas/nodes seen by the last decision.",
            pol,
            registry=r,
        )
        self.metric_value = Gauge(
            "gemini_metric_value",
            "Last value read of a policy metric.",
            [*pol, "metric"],
            registry=r,
        )
        self.metric_target = Gauge(
            "gemini_metric_target", "Target of a policy metric.", [*pol, "metric"], registry=r
        )
        self.metric_age = Gauge(
            "gemini_metric_age_seconds",
            "Age of the newest sample of a policy metric.",
            [*pol, "metric"],
            registry=r,
        )
        self.decisions = Counter(
            "gemini_decisions",
            "Decisions by outcome reason (the first reason code).",
            [*pol, "reason"],
            registry=r,
        )
        self.scale_events = Counter(
            "gemini_scale_events",
            "Applied scale changes by direction.",
            [*pol, "direction"],
            registry=r,
        )
        self.errors = Counter("gemini_errors", "Errors by kind.", ["kind"], registry=r)
        self.latency = Histogram(
            "gemini_evaluation_duration_seconds",
            "Wall time of one batch evaluation.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Histogram(
            "gemini_schedule_lag_seconds",
            "How late a batch started after its due time.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "gemini_batch_policies",
            "Policies per evaluation batch.",
            buckets=(1, 5, 10, 50, 100, 500, 1000, 5000),
            registry=r,
        )
        self.overruns = Counter(
            "gemini_overruns",
            "Evaluations skipped or late because the previous one of the same policy had not finished.",
            registry=r,
        )
        self.leader = Gauge(
            "gemini_leader", "1 when this replica is the acting leader.", registry=r
        )
        self.policies = Gauge(
            "gemini_policies", "Policies in the cache by condition.", ["state"], registry=r
        )
        self.watch_restarts = Counter(
            "gemini_watch_restarts", "Watch restarts by cause.", ["cause"], registry=r
        )
        # The per-policy series beyond (namespace, policy) each policy has, so that `forget`
        # removes them all: (family, extra label value) by (namespace, policy).
        self._extra: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._extra_lock = threading.Lock()

    def _note(self, namespace: str, name: str, family: str, value: str) -> None:
        with self._extra_lock:
            self._extra.setdefault((namespace, name), set()).add((family, value))

    def observe(self, namespace: str, name: str, result: TickResult) -> None:
        d = result.decision
        if d is None:
            self.errors.labels(result.error or "TargetReadFailed").inc()
            return
        self.desired.labels(namespace, name).set(d.desired)
        self.current.labels(namespace, name).set(
            result.apply.replicas if d.applied and result.apply else d.current
        )
        reason = d.reasons[0] if d.reasons else "None"
        self.decisions.labels(namespace, name, reason).inc()
        self._note(namespace, name, "decisions", reason)
        for m in d.metrics:
            self._note(namespace, name, "metric", m.name)
            if m.value is not None:
                self.metric_value.labels(namespace, name, m.name).set(m.value)
            if m.target is not None:
                self.metric_target.labels(namespace, name, m.name).set(m.target)
            if m.age_seconds is not None:
                self.metric_age.labels(namespace, name, m.name).set(m.age_seconds)
            if m.status.value != "ok":
                self.errors.labels(f"metric_{m.status.value}").inc()
        if d.applied:
            direction = "up" if d.desired > d.current else "down"
            self.scale_events.labels(namespace, name, direction).inc()
            self._note(namespace, name, "scale_events", direction)
        elif d.outcome in {"failed", "conflict", "refused"}:
            self.errors.labels(f"apply_{d.outcome}").inc()

    def forget(self, namespace: str, name: str) -> None:
        """Drop every series of a deleted policy."""
        for gauge in (self.desired, self.current):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)
        with self._extra_lock:
            extra = self._extra.pop((namespace, name), set())
        families: dict[str, tuple[Gauge | Counter, ...]] = {
            "metric": (self.metric_value, self.metric_target, self.metric_age),
            "decisions": (self.decisions,),
            "scale_events": (self.scale_events,),
        }
        for family, value in extra:
            for series in families[family]:
                with contextlib.suppress(KeyError):
                    series.remove(namespace, name, value)
