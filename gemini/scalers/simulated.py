"""`SimulatedScaler`: the `Scaler` protocol over an in-memory backend model.

Real package code used by the simulator and the demo. It reads and changes the capacity of a
backend model (`gemini.simulate.models`: pods with a start-up delay, Bigtable nodes with a
rebalance ramp); it never sleeps and never reads the clock (`now` comes from the caller).
Must not import `gemini.metrics`.

Standalone use (e.g. a scaler contract suite)::

    from gemini.scalers.simulated import SimulatedScaler
    scaler = SimulatedScaler()                       # 1 replica, 2.0 load/s each, no delay
    scaler = SimulatedScaler(DeploymentModel(2.0, startup_seconds=120, initial=4))

One scaler drives one model: every target it is asked about is that model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from gemini.policy.decision import Capacity
from gemini.scalers import ApplyResult, ApplyStatus, TargetRef


class BackendModel(Protocol):
    floor: int | None

    @property
    def count(self) -> int: ...

    def ready(self, t: float) -> float: ...

    def set_count(self, n: int, t: float) -> None: ...


class SimulatedScaler:
    """Capacity of a backend model; `apply` changes it at once (readiness follows the model)."""

    def __init__(
        self, model: BackendModel | None = None, *, max_capacity: int | None = None
    ) -> None:
        if model is None:
            from gemini.simulate.models import DeploymentModel

            model = DeploymentModel(2.0, 0.0, 1)
        self.model = model
        self.max_capacity = max_capacity
        self.applied = 0
        self._last: tuple[int, int, int | None, Capacity] | None = None

    def capacity(self, ref: TargetRef, now: datetime) -> Capacity:
        m = self.model
        floor = m.floor
        current = m.count
        ready = int(m.ready(now.timestamp()))
        last = self._last
        if last is not None and last[0] == current and last[1] == ready and last[2] == floor:
            return last[3]  # an immutable value: reuse it while nothing changed
        cap = Capacity(
            current=current,
            ready=ready,
            floor=floor,
            floor_reason="StorageFloor" if floor is not None else None,
            ceiling=self.max_capacity,
        )
        self._last = (current, ready, floor, cap)
        return cap

    def apply(self, ref: TargetRef, desired: int, now: datetime) -> ApplyResult:
        m = self.model
        current = m.count
        if desired < 0:
            return ApplyResult(ApplyStatus.FAILED, current, "InvalidReplicas", "desired < 0")
        if desired == current:
            return ApplyResult(ApplyStatus.UNCHANGED, current, "Unchanged")
        floor = m.floor or 0
        if desired < floor or (self.max_capacity is not None and desired > self.max_capacity):
            return ApplyResult(
                ApplyStatus.REFUSED, current, "OutOfRange", f"{desired} outside the model's limits"
            )
        try:
            m.set_count(desired, now.timestamp())
        except ValueError as exc:
            return ApplyResult(ApplyStatus.REFUSED, current, "OutOfRange", str(exc))
        self.applied += 1
        return ApplyResult(ApplyStatus.APPLIED, desired, "Scaled")
