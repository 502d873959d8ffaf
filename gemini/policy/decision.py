"""The decision record: one evaluation of one policy at one instant.

One shape everywhere: CR status, logs, decision store, dashboard, simulator output. It holds the
inputs (values and sample timestamps), the per-metric proposals, every step that changed the
result with its reason code, the final desired capacity, and whether it was applied.
Imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from gemini.clock import iso, parse_iso
from gemini.values import fast_init


class Reason(StrEnum):
    """Stable CamelCase reason codes (HPA's names where HPA has the concept)."""

    # outcome
    SCALE_UP = "ScaleUp"
    SCALE_DOWN = "ScaleDown"
    NO_CHANGE = "NoChange"
    # per metric
    WITHIN_TOLERANCE = "WithinTolerance"
    STEP_ADJUSTMENT = "StepAdjustment"
    NO_STEP_MATCHED = "NoStepMatched"
    METRIC_MISSING = "MetricMissing"
    METRIC_STALE = "MetricStale"
    METRIC_ERROR = "MetricError"
    FALLBACK_ACTIVE = "FallbackActive"
    METRIC_IGNORED = "MetricIgnored"
    # combination
    SCALE_DOWN_HELD_INVALID_METRIC = "ScaleDownHeldInvalidMetric"
    NO_VALID_METRICS = "NoValidMetrics"
    # bounds before behaviors (HPA: current outside min/max)
    CURRENT_ABOVE_MAX = "CurrentAboveMax"
    CURRENT_BELOW_MIN = "CurrentBelowMin"
    SCALING_DISABLED = "ScalingDisabled"
    # schedules and activation
    SCHEDULE_ACTIVE = "ScheduleActive"
    ACTIVATED = "Activated"
    SCALE_TO_ZERO = "ScaleToZero"
    SCALE_TO_ZERO_COOLDOWN = "ScaleToZeroCooldown"
    INACTIVE = "Inactive"
    # HPA behaviors
    SCALE_UP_STABILIZED = "ScaleUpStabilized"
    SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
    SCALE_UP_LIMIT = "ScaleUpLimit"
    SCALE_DOWN_LIMIT = "ScaleDownLimit"
    SCALE_UP_DISABLED = "ScaleUpDisabled"
    SCALE_DOWN_DISABLED = "ScaleDownDisabled"
    TOO_FEW_REPLICAS = "TooFewReplicas"
    TOO_MANY_REPLICAS = "TooManyReplicas"
    DESIRED_WITHIN_RANGE = "DesiredWithinRange"
    # gemini guards
    SCALE_UP_COOLDOWN = "ScaleUpCooldown"
    SCALE_DOWN_COOLDOWN = "ScaleDownCooldown"
    CHANGE_INTERVAL = "MinChangeInterval"
    BIGTABLE_SCALE_DOWN_LIMIT = "BigtableScaleDownLimit"
    SCALER_FLOOR = "ScalerFloor"
    SCALER_CEILING = "ScalerCeiling"
    TARGET_BUSY = "TargetBusy"
    # mode
    SHADOW = "ShadowMode"
    PAUSED = "Paused"


class MetricStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    STALE = "stale"
    ERROR = "error"


@fast_init
@dataclass(frozen=True, slots=True)
class MetricResult:
    """One metric's input and proposal within a decision."""

    name: str
    status: MetricStatus
    value: float | None = None
    sample_at: datetime | None = None
    age_seconds: float | None = None
    target: float | None = None
    target_type: str | None = None
    proposed: int | None = None
    reason: str | None = None
    error: str | None = None
    active: bool | None = None
    # `offsetSeconds` of a metric read from the past (a forecast): its sample time and age are
    # the moved ones, so the record says how far back the value really is
    offset_seconds: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "sampleAt": iso(self.sample_at) if self.sample_at else None,
            "ageSeconds": None if self.age_seconds is None else round(self.age_seconds, 3),
            "target": self.target,
            "targetType": self.target_type,
            "proposedReplicas": self.proposed,
            "status": self.status.value,
            "reason": self.reason,
            "error": self.error,
            "active": self.active,
            "offsetSeconds": self.offset_seconds,
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> MetricResult:
        return MetricResult(
            name=d["name"],
            status=MetricStatus(d["status"]),
            value=d.get("value"),
            sample_at=parse_iso(d["sampleAt"]) if d.get("sampleAt") else None,
            age_seconds=d.get("ageSeconds"),
            target=d.get("target"),
            target_type=d.get("targetType"),
            proposed=d.get("proposedReplicas"),
            reason=d.get("reason"),
            error=d.get("error"),
            active=d.get("active"),
            offset_seconds=int(d.get("offsetSeconds") or 0),
        )


@fast_init
@dataclass(frozen=True, slots=True)
class Step:
    """One stage of the decision that changed (or held) the value, with its reason."""

    stage: str
    value: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "value": self.value, "reason": self.reason}


# The outcomes `decide` settles itself (nothing to apply); the shell's are `ApplyStatus` values.
OUTCOME_PAUSED = "paused"
OUTCOME_SHADOW = "shadow"
OUTCOME_UNCHANGED = "unchanged"

# A read-only empty `extra`, shared by the decisions `decide` builds (the field's
# `default_factory=dict` makes a dict for each, ~0.3 us on every tick)
NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


@fast_init
@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of `decide()`.

    `outcome` says what became of the decision. `decide` fills it when there is nothing to
    apply: `paused`, `shadow` (the mode), `unchanged` (desired == current). Otherwise it is
    None, and the shell (`loop.tick`) fills it and `applied` after it acts (`applied`, `busy`,
    `refused`, `failed`, ...: `ApplyStatus`)."""

    policy: str
    at: datetime
    mode: str
    current: int
    desired: int
    recommendation: int | None
    min_replicas: int
    max_replicas: int
    reasons: tuple[str, ...]
    metrics: tuple[MetricResult, ...]
    steps: tuple[Step, ...] = ()
    applied: bool = False
    outcome: str | None = None
    target: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def change(self) -> int:
        return self.desired - self.current

    def with_outcome(self, applied: bool, outcome: str, *more_reasons: str) -> Decision:
        reasons = self.reasons
        if more_reasons:
            reasons = reasons + tuple(r for r in more_reasons if r not in reasons)
        # A direct construction: `dataclasses.replace` costs ~10 % of a simulated tick.
        return Decision(
            self.policy,
            self.at,
            self.mode,
            self.current,
            self.desired,
            self.recommendation,
            self.min_replicas,
            self.max_replicas,
            reasons,
            self.metrics,
            self.steps,
            applied,
            outcome,
            self.target,
            self.extra,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "at": iso(self.at),
            "policy": self.policy,
            "target": self.target,
            "mode": self.mode,
            "currentReplicas": self.current,
            "desiredReplicas": self.desired,
            "recommendation": self.recommendation,
            "minReplicas": self.min_replicas,
            "maxReplicas": self.max_replicas,
            "applied": self.applied,
            "outcome": self.outcome,
            "reasons": list(self.reasons),
            "metrics": [m.to_dict() for m in self.metrics],
            "steps": [s.to_dict() for s in self.steps],
        }
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Decision:
        return Decision(
            policy=d["policy"],
            at=parse_iso(d["at"]),
            mode=d.get("mode", "Active"),
            current=int(d["currentReplicas"]),
            desired=int(d["desiredReplicas"]),
            recommendation=d.get("recommendation"),
            min_replicas=int(d.get("minReplicas", 0)),
            max_replicas=int(d.get("maxReplicas", 0)),
            reasons=tuple(d.get("reasons", ())),
            metrics=tuple(MetricResult.from_dict(m) for m in d.get("metrics", ())),
            steps=tuple(Step(s["stage"], int(s["value"]), s["reason"]) for s in d.get("steps", ())),
            applied=bool(d.get("applied", False)),
            outcome=d.get("outcome"),
            target=d.get("target"),
            extra=dict(d.get("extra", {})),
        )

    def summary(self) -> str:
        return f"{self.current} -> {self.desired} ({', '.join(self.reasons)})"


@fast_init
@dataclass(frozen=True, slots=True)
class Capacity:
    """What the scaler reports about the target right now (an input to `decide`).

    `floor`/`ceiling` are the scaler's hard limits (e.g. Bigtable's storage floor) with the reason
    code that explains them; `busy` means an earlier change is still in progress; `blocked` is a
    reason code when the scaler refuses to act on the target (HPA owns it, native autoscaling on);
    `reasons` are conditions worth recording in the decision (an earlier change failed, someone
    else is resizing the target).
    """

    current: int
    ready: int | None = None
    floor: int | None = None
    floor_reason: str | None = None
    ceiling: int | None = None
    ceiling_reason: str | None = None
    busy: bool = False
    blocked: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    # conditions the scaler reports this read (e.g. Bigtable `OperationFailed`,
    # `ExternalResize`); `decide()` copies them into the decision's reasons
    reasons: tuple[str, ...] = ()
