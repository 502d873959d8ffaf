"""The scaler contract: one set of tests every `Scaler` implementation must pass.

A runner module (`tests/scalers/test_contract_<impl>.py`) subclasses `ScalerContract` and
provides an `adapter` fixture: a small `Adapter` that creates a target at N, tells the truth about
the backend (`observed`), lets an applied change finish (`settle`), counts the writes sent, and
injects the implementation's busy / conflict / missing-target conditions where it has them.

What every implementation promises (gemini/scalers/__init__.py):
- `capacity` reflects applies (after the change settles);
- `apply` is idempotent: the current value gives UNCHANGED and sends nothing;
- `apply` never raises for expected outcomes (busy, conflict, refused, missing): they are results;
- `apply` returns the replicas actually set (what the backend has once the change settles);
- a busy target is not stacked: a change while another is in flight sends nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest

from gemini.errors import ScaleError
from gemini.scalers import ApplyStatus, Scaler, TargetRef

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
# an hour between steps: no period-based guardrail (e.g. Bigtable's scale-down step) carries over
STEP = timedelta(hours=1)


class Adapter(Protocol):
    """What the contract needs to drive one implementation."""

    scaler: Scaler
    asynchronous: bool  # True: an applied change finishes later (Bigtable LRO), see `settle`

    def create(self, replicas: int) -> TargetRef:
        """A fresh target at `replicas`, settled."""
        ...

    def observed(self, ref: TargetRef) -> int:
        """The backend's own count (the fake server's state, the model's count)."""
        ...

    def settle(self, ref: TargetRef) -> None:
        """Let an applied change finish (complete the operation, finish the rollout)."""
        ...

    def writes(self, ref: TargetRef) -> int:
        """How many change requests were sent to the backend for this target so far."""
        ...

    def make_busy(self, ref: TargetRef) -> bool:
        """Put the target mid-change by someone else; False when the implementation has no
        such state."""
        ...

    def conflict_once(self, ref: TargetRef) -> bool:
        """Make the next write meet a conflict (e.g. HTTP 409); False when not applicable."""
        ...

    def remove(self, ref: TargetRef) -> bool:
        """Delete the target; False when the implementation has no such thing."""
        ...


class ScalerContract:
    """Subclass with an `adapter` fixture returning an `Adapter`."""

    @pytest.mark.parametrize("replicas", [1, 3, 7], ids=["one", "three", "seven"])
    def test_capacity_reads_the_target(self, adapter: Adapter, replicas: int) -> None:
        ref = adapter.create(replicas)
        cap = adapter.scaler.capacity(ref, T0)
        assert cap.current == replicas == adapter.observed(ref)
        assert not cap.busy

    @pytest.mark.parametrize(
        ("start", "desired"),
        [(3, 5), (1, 2), (10, 9), (4, 12)],
        ids=["up", "from-one", "down-by-one", "up-triple"],
    )
    def test_capacity_reflects_apply(self, adapter: Adapter, start: int, desired: int) -> None:
        ref = adapter.create(start)
        result = adapter.scaler.apply(ref, desired, T0)
        assert (result.status, result.replicas) == (ApplyStatus.APPLIED, desired)
        assert result.changed and result.reason
        adapter.settle(ref)
        assert adapter.scaler.capacity(ref, T0 + STEP).current == desired
        assert adapter.observed(ref) == desired

    @pytest.mark.parametrize("replicas", [1, 4], ids=["one", "four"])
    def test_same_value_is_unchanged_and_sends_nothing(
        self, adapter: Adapter, replicas: int
    ) -> None:
        ref = adapter.create(replicas)
        adapter.scaler.capacity(ref, T0)
        result = adapter.scaler.apply(ref, replicas, T0)
        assert (result.status, result.replicas) == (ApplyStatus.UNCHANGED, replicas)
        assert not result.changed
        assert adapter.writes(ref) == 0
        assert adapter.observed(ref) == replicas

    def test_apply_is_idempotent(self, adapter: Adapter) -> None:
        ref = adapter.create(2)
        first = adapter.scaler.apply(ref, 6, T0)
        assert first.status is ApplyStatus.APPLIED
        adapter.settle(ref)
        adapter.scaler.capacity(ref, T0 + STEP)
        again = adapter.scaler.apply(ref, 6, T0 + STEP)
        assert (again.status, again.replicas) == (ApplyStatus.UNCHANGED, 6)
        assert adapter.writes(ref) == 1

    @pytest.mark.parametrize(
        ("start", "desired"),
        [(10, 2), (20, 1), (6, 0)],
        ids=["big-step-down", "to-one", "to-zero"],
    )
    def test_returns_the_replicas_actually_set(
        self, adapter: Adapter, start: int, desired: int
    ) -> None:
        ref = adapter.create(start)
        result = adapter.scaler.apply(ref, desired, T0)  # guardrails may clip or refuse
        assert result.status in {
            ApplyStatus.APPLIED,
            ApplyStatus.UNCHANGED,
            ApplyStatus.REFUSED,
        }
        assert result.reason
        adapter.settle(ref)
        if result.status is ApplyStatus.REFUSED:
            assert adapter.observed(ref) == start
        else:
            assert adapter.observed(ref) == result.replicas
            assert adapter.scaler.capacity(ref, T0 + STEP).current == result.replicas

    def test_changes_in_flight_are_not_stacked(self, adapter: Adapter) -> None:
        ref = adapter.create(3)
        first = adapter.scaler.apply(ref, 5, T0)
        second = adapter.scaler.apply(ref, 7, T0 + timedelta(seconds=1))
        assert first.status is ApplyStatus.APPLIED
        if adapter.asynchronous:
            assert (second.status, second.replicas) == (ApplyStatus.BUSY, 5)
            assert adapter.writes(ref) == 1
            adapter.settle(ref)
            assert adapter.observed(ref) == 5
        else:  # the first change is complete when apply returns
            assert second.status is ApplyStatus.APPLIED
            adapter.settle(ref)
            assert adapter.observed(ref) == 7

    def test_a_target_busy_elsewhere_is_left_alone(self, adapter: Adapter) -> None:
        ref = adapter.create(3)
        if not adapter.make_busy(ref):
            pytest.skip("this implementation has no busy state set by others")
        assert adapter.scaler.capacity(ref, T0).busy
        writes = adapter.writes(ref)
        result = adapter.scaler.apply(ref, 9, T0)
        assert result.status is ApplyStatus.BUSY and result.reason
        assert adapter.writes(ref) == writes

    def test_a_conflict_is_a_result(self, adapter: Adapter) -> None:
        ref = adapter.create(3)
        if not adapter.conflict_once(ref):
            pytest.skip("this implementation has no write conflicts")
        result = adapter.scaler.apply(ref, 5, T0)
        assert result.status in {
            ApplyStatus.APPLIED,
            ApplyStatus.CONFLICT,
            ApplyStatus.BUSY,
            ApplyStatus.FAILED,
        }
        assert result.reason
        adapter.settle(ref)
        expected = result.replicas if result.status is ApplyStatus.APPLIED else 3
        assert adapter.observed(ref) == expected

    def test_a_missing_target_is_an_error_or_a_result(self, adapter: Adapter) -> None:
        ref = adapter.create(3)
        if not adapter.remove(ref):
            pytest.skip("this implementation's targets cannot disappear")
        with pytest.raises(ScaleError) as info:
            adapter.scaler.capacity(ref, T0)
        assert info.value.reason
        result = adapter.scaler.apply(ref, 5, T0)
        assert result.status in {ApplyStatus.FAILED, ApplyStatus.REFUSED}
        assert result.reason
