"""Builds the real metric reader and scaler the controller runs with.

Owns the composition only: one `MonitoringReader` shared by the Cloud Monitoring, Pub/Sub and
Bigtable sources (one gRPC channel, one set of call statistics); the Kubernetes metric source and
the Kubernetes scaler on the controller's own `ApiClient`; the Bigtable scaler created on first
use (so a cluster without Bigtable policies needs no Google credentials) with its storage floor
fed by `bigtable.googleapis.com/disk/bytes_used` through the metrics package. The controller is the
one place allowed to import both `gemini.metrics` and `gemini.scalers`.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from gemini.clock import Clock
from gemini.metrics import MetricSource, RoutingReader, source_class
from gemini.policy.decision import Capacity
from gemini.scalers import ApplyResult, RoutingScaler, Scaler, TargetRef

MONITORING_KINDS = ("cloudMonitoring", "pubsub", "bigtable")
CONFLICT_TTL_SECONDS = 10.0
# A batch reads the Deployments (StatefulSets, ReplicaSets) of a namespace with one LIST when it
# has at least this many of them as targets; fewer are read with one GET each.
LIST_THRESHOLD = 10


def monitoring_reader() -> Any:
    from gemini.metrics.cloud_monitoring import MonitoringReader

    return MonitoringReader()


def build_reader(api_client: Any, monitoring: Any) -> RoutingReader:
    def factory(kind: str) -> MetricSource:
        cls = source_class(kind)
        if kind in MONITORING_KINDS:
            return cls(reader=monitoring)
        if kind == "kubernetes":
            return cls(api_client)
        return cls()

    return RoutingReader(factory=factory)


class LazyScaler:
    """Creates the wrapped scaler on first use (thread-safe)."""

    def __init__(self, make: Any) -> None:
        self._make = make
        self._scaler: Scaler | None = None
        self._lock = threading.Lock()

    def _get(self) -> Scaler:
        with self._lock:
            if self._scaler is None:
                self._scaler = self._make()
            return self._scaler

    def capacity(self, ref: TargetRef, now: datetime) -> Capacity:
        return self._get().capacity(ref, now)

    def apply(self, ref: TargetRef, desired: int, now: datetime) -> ApplyResult:
        return self._get().apply(ref, desired, now)


def storage_reader(monitoring: Any, clock: Clock) -> Any:
    """Bytes used by a Bigtable cluster (None when unknown), for the scaler's storage floor."""

    def read(ref: TargetRef) -> float | None:
        from gemini.metrics.bigtable import read_bytes_used

        bt = ref.target.bigtable
        if bt is None:
            return None
        [obs] = read_bytes_used(
            [(bt.project, bt.instance, bt.cluster)], clock.now(), reader=monitoring
        )
        return obs.latest.value if obs.ok and obs.latest is not None else None

    return read


def build_scaler(
    api_client: Any, monitoring: Any, clock: Clock, *, list_threshold: int = LIST_THRESHOLD
) -> RoutingScaler:
    from gemini.scalers.kubernetes import KubernetesScaler

    def bigtable() -> Scaler:
        from gemini.scalers.bigtable import BigtableScaler

        return BigtableScaler(storage_reader=storage_reader(monitoring, clock))

    # One HPA/ScaledObject list per namespace per batch (all ticks of a batch share `now`), not
    # one per policy; a new HPA is noticed within CONFLICT_TTL_SECONDS.
    kube = KubernetesScaler(
        api_client, conflict_ttl_seconds=CONFLICT_TTL_SECONDS, list_threshold=list_threshold
    )
    return RoutingScaler({"kubernetes": kube, "bigtable": LazyScaler(bigtable)})
