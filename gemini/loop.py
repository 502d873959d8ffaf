"""`tick`: the one imperative step shared by the controller, the simulator and the demo.

Read capacity (scaler) -> fetch observations (sources, batched across policies; failures are
values) -> `engine.decide` (pure) -> apply if Active and changed -> record. A scale event enters
the state only after a successful apply. One broken policy never stops the others: every
per-policy failure becomes that policy's result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from gemini.errors import ScaleError
from gemini.metrics import MetricReader, MetricRequest
from gemini.policy import engine
from gemini.policy.decision import Capacity, Decision, Reason, Step
from gemini.policy.spec import ScalingPolicy, Spec
from gemini.policy.state import PolicyState
from gemini.scalers import ApplyResult, ApplyStatus, Scaler, TargetRef
from gemini.series import Observation
from gemini.values import fast_init


class DecisionSink(Protocol):
    def record(self, decision: Decision) -> None: ...


class Fanout:
    """One sink that records into several (store writer, Pub/Sub, console); a failing sink
    never stops the others or the loop."""

    def __init__(self, *sinks: DecisionSink) -> None:
        self.sinks = sinks
        self.failures = 0

    def record(self, decision: Decision) -> None:
        for sink in self.sinks:
            try:
                sink.record(decision)
            except Exception:
                self.failures += 1


@fast_init
@dataclass(frozen=True, slots=True)
class TickResult:
    policy: str
    state: PolicyState
    decision: Decision | None = None
    apply: ApplyResult | None = None
    error: str | None = None  # the target could not be read: reason code
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What a tick reads from a policy, built once per policy object (policies are immutable;
    an edited policy is a new object). Also spares the pydantic attribute reads, which cost
    ~4x a plain object's (see `behavior.MetricPlan`)."""

    policy: ScalingPolicy
    spec: Spec
    ref: TargetRef
    requests: tuple[MetricRequest, ...]


# keyed by id() with an identity check, bounded
_PREPARED: dict[int, _Prepared] = {}


def _prepared(policy: ScalingPolicy) -> _Prepared:
    hit = _PREPARED.get(id(policy))
    if hit is not None and hit.policy is policy:
        return hit
    ns, spec = policy.metadata.namespace, policy.spec
    ref = TargetRef(policy.key, ns, spec.target)
    reqs = tuple(MetricRequest(policy.key, ns, m) for m in spec.metrics)
    if len(_PREPARED) > 8192:
        _PREPARED.clear()
    prepared = _PREPARED[id(policy)] = _Prepared(policy, spec, ref, reqs)
    return prepared


def target_ref(policy: ScalingPolicy) -> TargetRef:
    return _prepared(policy).ref


def requests_for(policy: ScalingPolicy) -> list[MetricRequest]:
    return list(_prepared(policy).requests)


def _capacity(scaler: Scaler, ref: TargetRef, now: datetime) -> Capacity | ScaleError:
    try:
        return scaler.capacity(ref, now)
    except ScaleError as exc:
        return exc
    except Exception as exc:  # unexpected: still only this policy's problem
        return ScaleError(f"reading the target failed: {exc}", "TargetReadFailed")


def _evaluate(
    prepared: _Prepared,
    state: PolicyState,
    cap: Capacity | ScaleError,
    observations: Sequence[Observation],
    scaler: Scaler,
    now: datetime,
    sink: DecisionSink | None,
) -> TickResult:
    """Decide, apply and record one policy whose capacity and observations were read."""
    key = prepared.ref.policy
    if isinstance(cap, ScaleError):
        return TickResult(key, state, error=cap.reason, error_message=str(cap))
    decision, new_state = engine.decide(prepared.spec, state, observations, cap, now, policy=key)
    decision, new_state, applied = _act(prepared, decision, new_state, scaler, now, cap)
    if sink is not None:
        sink.record(decision)
    return TickResult(key, new_state, decision, applied)


def tick_batch(
    items: Sequence[tuple[ScalingPolicy, PolicyState]],
    *,
    reader: MetricReader,
    scaler: Scaler,
    now: datetime,
    sink: DecisionSink | None = None,
) -> list[TickResult]:
    """Evaluate several policies at one instant with one batched metric read."""
    prepared = [_prepared(policy) for policy, _state in items]
    capacities: list[Capacity | ScaleError] = []
    requests: list[MetricRequest] = []
    spans: list[tuple[int, int]] = []
    for prep in prepared:
        cap = _capacity(scaler, prep.ref, now)
        capacities.append(cap)
        if isinstance(cap, ScaleError):
            spans.append((len(requests), len(requests)))
            continue
        spans.append((len(requests), len(requests) + len(prep.requests)))
        requests.extend(prep.requests)

    observations = reader.read(requests, now) if requests else []
    return [
        _evaluate(prep, state, cap, observations[lo:hi], scaler, now, sink)
        for prep, (_policy, state), cap, (lo, hi) in zip(
            prepared, items, capacities, spans, strict=True
        )
    ]


def tick(
    policy: ScalingPolicy,
    state: PolicyState,
    *,
    reader: MetricReader,
    scaler: Scaler,
    now: datetime,
    sink: DecisionSink | None = None,
) -> TickResult:
    """Evaluate one policy once: `tick_batch` of one, without its bookkeeping (the simulator
    calls this on every step)."""
    prepared = _prepared(policy)
    cap = _capacity(scaler, prepared.ref, now)
    reqs = prepared.requests
    ok = reqs and not isinstance(cap, ScaleError)
    observations = reader.read(reqs, now) if ok else []
    return _evaluate(prepared, state, cap, observations, scaler, now, sink)


def _act(
    prepared: _Prepared,
    decision: Decision,
    state: PolicyState,
    scaler: Scaler,
    now: datetime,
    capacity: Capacity | None = None,
) -> tuple[Decision, PolicyState, ApplyResult | None]:
    if decision.outcome is not None:
        # `decide` settled it: paused, shadow or unchanged, nothing to apply (the usual tick:
        # no second decision record is built)
        return decision, state, None
    if Reason.TARGET_BUSY.value in decision.reasons:
        return decision.with_outcome(False, ApplyStatus.BUSY.value), state, None
    if capacity is not None and capacity.blocked:
        # The scaler said it will not act on this target (HPA owns it, native autoscaling on).
        return (
            decision.with_outcome(False, ApplyStatus.REFUSED.value, capacity.blocked),
            state,
            None,
        )
    try:
        result = scaler.apply(prepared.ref, decision.desired, now)
    except ScaleError as exc:
        result = ApplyResult(ApplyStatus.FAILED, decision.current, exc.reason, str(exc))
    except Exception as exc:
        result = ApplyResult(ApplyStatus.FAILED, decision.current, "ScaleFailed", str(exc))
    if result.changed:
        state = state.with_scale_event(now, decision.current, result.replicas)
        if result.replicas != decision.desired:
            # The scaler's own hard limits clipped the request: record what was really set.
            clipped = Step("apply", result.replicas, result.reason)
            decision = replace(decision, desired=result.replicas, steps=(*decision.steps, clipped))
            return decision.with_outcome(True, result.status.value, result.reason), state, result
        return decision.with_outcome(True, result.status.value), state, result
    return decision.with_outcome(False, result.status.value, result.reason), state, result
