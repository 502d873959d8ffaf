"""Scalers: the `Scaler` protocol and its registry.

A scaler reads the target's capacity (`Capacity`: current, ready, hard floor/ceiling, busy,
blocked) and applies a desired capacity. `apply` is idempotent and returns what actually
happened; it raises nothing for expected outcomes (busy, conflict, refused): those are results.
Must not import `gemini.metrics`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from gemini.policy.decision import Capacity
from gemini.policy.spec import Target
from gemini.values import fast_init


@dataclass(frozen=True, slots=True)
class TargetRef:
    """A policy's target, with the namespace it lives in."""

    policy: str  # "namespace/name"
    namespace: str
    target: Target


class ApplyStatus(StrEnum):
    APPLIED = "applied"  # the change was made (or, for Bigtable, its operation started)
    UNCHANGED = "unchanged"  # already at the desired capacity
    BUSY = "busy"  # an earlier change is still in progress; nothing sent
    CONFLICT = "conflict"  # changed under us and retries ran out; try next tick
    REFUSED = "refused"  # the scaler will not act (HPA owns it, RBAC, native autoscaling)
    FAILED = "failed"  # the API failed


@fast_init
@dataclass(frozen=True, slots=True)
class ApplyResult:
    status: ApplyStatus
    replicas: int  # capacity after the call (requested size for an operation that started)
    reason: str  # stable CamelCase code
    message: str = ""

    @property
    def changed(self) -> bool:
        return self.status is ApplyStatus.APPLIED


class Scaler(Protocol):
    def capacity(self, ref: TargetRef, now: datetime) -> Capacity:
        """Read the target. Raises `gemini.errors.ScaleError` subclasses when it cannot."""
        ...

    def apply(self, ref: TargetRef, desired: int, now: datetime) -> ApplyResult: ...


SCALERS: dict[str, str] = {
    "kubernetes": "gemini.scalers.kubernetes:KubernetesScaler",
    "bigtable": "gemini.scalers.bigtable:BigtableScaler",
    "simulated": "gemini.scalers.simulated:SimulatedScaler",
}


def scaler_class(kind: str) -> Callable[..., Scaler]:
    if kind not in SCALERS:
        known = ", ".join(sorted(SCALERS))
        raise ValueError(f"unknown scaler {kind!r}; known: {known}")
    module, _, name = SCALERS[kind].partition(":")
    cls: Callable[..., Scaler] = getattr(importlib.import_module(module), name)
    return cls


class RoutingScaler:
    """Dispatches on the target kind (`kubernetes` / `bigtable`)."""

    def __init__(self, scalers: Mapping[str, Scaler]) -> None:
        self._scalers = dict(scalers)

    def _for(self, ref: TargetRef) -> Scaler:
        kind = ref.target.kind
        if kind not in self._scalers:
            raise ValueError(f"no scaler configured for target kind {kind!r}")
        return self._scalers[kind]

    def capacity(self, ref: TargetRef, now: datetime) -> Capacity:
        return self._for(ref).capacity(ref, now)

    def apply(self, ref: TargetRef, desired: int, now: datetime) -> ApplyResult:
        return self._for(ref).apply(ref, desired, now)

    def prefetch(self, refs: Sequence[TargetRef], now: datetime) -> int:
        """Optional: lets each scaler that can read many targets at once (a `prefetch` method,
        e.g. `KubernetesScaler.prefetch`) do so before `capacity(ref, now)` is called for each.
        Returns the number of API calls made."""
        by_kind: dict[str, list[TargetRef]] = {}
        for ref in refs:
            by_kind.setdefault(ref.target.kind, []).append(ref)
        calls = 0
        for kind, group in by_kind.items():
            fetch = getattr(self._scalers.get(kind), "prefetch", None)
            if fetch is not None:
                calls += int(fetch(group, now))
        return calls
