"""Per-metric proposals: reduce samples over the window, then the HPA formula or step scaling.

Pure arithmetic. HPA semantics (pkg/controller/podautoscaler/replica_calculator.go):
- Value / Utilization: ratio = value / target; within tolerance -> current; else
  ceil(current x ratio); from zero replicas ceil(ratio).
- AverageValue: ratio = value / (target x current); within tolerance -> current; else
  ceil(value / target).
Integer results are computed as the mathematics intends (a tiny epsilon absorbs float noise such
as 5 x 1.2 = 6.000000000000001), and a ratio exactly on the tolerance is within it.
Imports no I/O library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from gemini.policy.decision import Reason
from gemini.policy.spec import AdjustmentType, StepScaling, WindowFunction
from gemini.series import Sample

EPSILON = 1e-9
_WITHIN = Reason.WITHIN_TOLERANCE.value
# Enum members used on every evaluation, as module constants: on Python 3.11 an Enum class
# attribute costs ~0.1 us (EnumType.__getattr__ is on the lookup path).
_LAST, _MEAN, _MAX = WindowFunction.LAST, WindowFunction.MEAN, WindowFunction.MAX


MAX_PROPOSAL = 2**31 - 1  # Kubernetes replica counts are int32


def ceil(x: float) -> int:
    """ceil that ignores float noise just above an integer, clamped to [0, MAX_PROPOSAL] (a
    negative metric asks for nothing; an overflowing ratio asks for everything)."""
    if x >= MAX_PROPOSAL:
        return MAX_PROPOSAL
    if x <= 0:
        return 0
    return math.ceil(x - EPSILON)


def within_tolerance(ratio: float, up_tolerance: float, down_tolerance: float) -> bool:
    if ratio >= 1.0:
        return ratio - 1.0 <= up_tolerance + EPSILON
    return 1.0 - ratio <= down_tolerance + EPSILON


def reduce(
    samples: Sequence[Sample], window_seconds: int, function: WindowFunction, now: datetime
) -> tuple[float, datetime] | None:
    """The value over the window and the newest sample's time; None when nothing is visible.

    Samples after `now` are never used. Window 0 means the newest sample alone.
    """
    visible = [s for s in samples if s.at <= now] if samples and samples[-1].at > now else samples
    if not visible:
        return None
    newest = visible[-1]
    if window_seconds <= 0 or function is _LAST:
        return newest.value, newest.at
    cutoff = now.timestamp() - window_seconds
    values = [s.value for s in visible if s.at.timestamp() > cutoff] or [newest.value]
    if function is _MEAN:
        return sum(values) / len(values), newest.at
    if function is _MAX:
        return max(values), newest.at
    return min(values), newest.at


def target_tracking(
    average_value: bool,
    amount: float,
    value: float,
    current: int,
    up_tolerance: float,
    down_tolerance: float,
) -> tuple[int, str | None]:
    """HPA's formula for one metric whose target is `amount` (per replica when `average_value`,
    the AverageValue type). Returns (replicas, reason or None)."""
    if average_value:
        if current == 0:
            return (ceil(value / amount) if value > 0 else 0), None
        ratio = value / (amount * current)
        if within_tolerance(ratio, up_tolerance, down_tolerance):
            return current, _WITHIN
        return ceil(value / amount), None
    ratio = value / amount
    if current == 0:
        return ceil(ratio), None
    if within_tolerance(ratio, up_tolerance, down_tolerance):
        return current, _WITHIN
    return ceil(ratio * current), None


def _aws_round(x: float) -> int:
    """AWS step-scaling rounding: toward zero, but at least one replica of change."""
    if 0 < x < 1:
        return 1
    if -1 < x < 0:
        return -1
    return int(x)


def step_scaling(rules: StepScaling, value: float, current: int) -> tuple[int, str]:
    step = rules.adjustment_for(value)
    if step is None:
        return current, Reason.NO_STEP_MATCHED.value
    if rules.adjustment_type is AdjustmentType.EXACT_CAPACITY:
        return max(0, step.adjustment), Reason.STEP_ADJUSTMENT.value
    if rules.adjustment_type is AdjustmentType.CHANGE_IN_CAPACITY:
        return max(0, current + step.adjustment), Reason.STEP_ADJUSTMENT.value
    change = _aws_round(current * step.adjustment / 100.0)
    if change != 0 and abs(change) < rules.min_adjustment_magnitude:
        change = rules.min_adjustment_magnitude * (1 if change > 0 else -1)
    if change == 0 and step.adjustment != 0:
        change = rules.min_adjustment_magnitude * (1 if step.adjustment > 0 else -1)
    return max(0, current + change), Reason.STEP_ADJUSTMENT.value
