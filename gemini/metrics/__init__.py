"""Metric sources: the `MetricSource` protocol, its registry, and the reader that batches.

A source reads many metric requests at once (so calls can be batched across policies) and
returns one `Observation` per request, in order. A source never raises for a failed read: the
failure becomes an Observation with `error_kind` (unavailable, deadline, quota, permission,
empty, invalid, not_found, error). Must not import `gemini.scalers`.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from gemini.policy.spec import Metric
from gemini.series import Observation, Sample

# history a recorded or in-memory source returns besides the metric's own window
DEFAULT_LOOKBACK_SECONDS = 600


@dataclass(frozen=True, slots=True)
class MetricRequest:
    """One metric of one policy to read."""

    policy: str  # "namespace/name"
    namespace: str
    metric: Metric

    @property
    def lookback_seconds(self) -> int:
        """How far back a source that keeps its own history (a recorded trace, the in-memory
        source) answers: the metric's window, and at least DEFAULT_LOOKBACK_SECONDS."""
        return max(self.metric.window_seconds, DEFAULT_LOOKBACK_SECONDS)


class MetricSource(Protocol):
    def fetch(self, requests: Sequence[MetricRequest], now: datetime) -> list[Observation]:
        """One Observation per request, in the same order; never samples after `now`."""
        ...

    def close(self) -> None: ...


class MetricReader(Protocol):
    """What `loop.tick` reads through: any source mix, batched."""

    def read(self, requests: Sequence[MetricRequest], now: datetime) -> list[Observation]: ...


# Literal registry: source kind (the field name under spec.metrics[].source) -> "module:Class".
# Imported lazily so that a controller without, say, Prometheus policies never imports httpx.
SOURCES: dict[str, str] = {
    "cloudMonitoring": "gemini.metrics.cloud_monitoring:CloudMonitoringSource",
    "pubsub": "gemini.metrics.pubsub:PubsubSource",
    "bigtable": "gemini.metrics.bigtable:BigtableSource",
    "prometheus": "gemini.metrics.prometheus:PrometheusSource",
    "kubernetes": "gemini.metrics.kubernetes:KubernetesSource",
    "recorded": "gemini.metrics.recorded:RecordedSource",
}


def source_class(kind: str) -> Callable[..., MetricSource]:
    if kind not in SOURCES:
        known = ", ".join(sorted(SOURCES))
        raise ValueError(f"unknown metric source {kind!r}; known: {known}")
    module, _, name = SOURCES[kind].partition(":")
    cls: Callable[..., MetricSource] = getattr(importlib.import_module(module), name)
    return cls


def shifted(obs: Observation, seconds: float) -> Observation:
    """`obs` with every sample `seconds` later (a metric read with `offsetSeconds`)."""
    if not obs.samples:
        return obs
    by = timedelta(seconds=seconds)
    return replace(obs, samples=tuple(Sample(s.at + by, s.value) for s in obs.samples))


class RoutingReader:
    """Routes each request to the source for its kind; one `fetch` per kind per read.

    `sources` maps kind -> an instance; kinds not given are created on first use from the
    registry with `factory(kind)` (default: the class with no arguments).
    """

    def __init__(
        self,
        sources: Mapping[str, MetricSource] | None = None,
        factory: Callable[[str], MetricSource] | None = None,
    ) -> None:
        self._sources: dict[str, MetricSource] = dict(sources or {})
        self._factory = factory or (lambda kind: source_class(kind)())

    def source(self, kind: str) -> MetricSource:
        if kind not in self._sources:
            self._sources[kind] = self._factory(kind)
        return self._sources[kind]

    def read(self, requests: Sequence[MetricRequest], now: datetime) -> list[Observation]:
        """A metric with `offsetSeconds` is fetched as of `now - offset` (one fetch per kind and
        offset), and its samples are moved forward by the offset: the engine sees them as
        current, and judges their age as it does any other metric's."""
        out: list[Observation | None] = [None] * len(requests)
        by_kind: dict[tuple[str, int], list[int]] = defaultdict(list)
        for i, req in enumerate(requests):
            by_kind[req.metric.source.kind, req.metric.offset_seconds].append(i)
        for (kind, offset), idxs in by_kind.items():
            batch = [requests[i] for i in idxs]
            try:
                results = self.source(kind).fetch(batch, now - timedelta(seconds=offset))
                if offset:
                    results = [shifted(obs, offset) for obs in results]
            except Exception as exc:  # a broken source must not stop the others
                results = [
                    Observation.failed(r.metric.name, "error", f"{kind} source failed: {exc}")
                    for r in batch
                ]
            if len(results) != len(batch):  # a source bug: fail its requests, not the read
                results = [
                    Observation.failed(
                        r.metric.name,
                        "error",
                        f"{kind} source returned {len(results)} results for {len(batch)} requests",
                    )
                    for r in batch
                ]
            for i, obs in zip(idxs, results, strict=True):
                out[i] = obs
        return [
            o if o is not None else Observation.failed(r.metric.name, "error", "no result")
            for o, r in zip(out, requests, strict=True)
        ]

    def close(self) -> None:
        """Close every source; one that fails to close does not keep the others open."""
        errors: list[Exception] = []
        for src in self._sources.values():
            try:
                src.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
