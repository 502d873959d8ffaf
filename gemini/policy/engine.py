"""`decide()`: the only place a scaling decision is made.

Synchronous, no I/O, never reads the clock: `now` is an argument. Steps, each recording what it
changed and why (a stable reason code per clip, see `Reason`):

1. reduce each metric's samples over its window (samples after `now` are ignored); mark missing,
   stale (older than maxAgeSeconds) or failed metrics;
2. one proposal per metric (HPA formula with per-direction tolerance, or step scaling); fallback
   after N consecutive failures when the metric asks for it;
3. combine: max of valid proposals; never scale down while a metric is invalid (HPA's rule), all
   invalid -> no change;
4. schedules (min/max while a cron window is active); current outside [min, max] goes straight to
   the bound (HPA); activation and scale to/from zero (KEDA);
5. stabilization windows (up: lowest recent recommendation, down: highest); the window records
   the recommendation before rate limits, as HPA does;
6. rate policies against the count at each period's start, then min/max (HPA), Bigtable's
   scale-down guardrail (which also slows a drop to a lowered max: it outranks maxReplicas);
7. cooldowns (up: since the last scale-up; down: since any scale event) and Bigtable's minimum
   interval between changes;
8. the scaler's hard floor/ceiling (e.g. Bigtable storage), busy/blocked target;
9. mode: Active applies, Shadow records only, Paused reports and holds (desired = current);
   the decision's `outcome` is set here when there is nothing to apply (paused, shadow,
   unchanged), so the shell builds a second record only when it acts.

Deliberate differences from HPA's Go code, both in the user's favour and tested:
- float noise is not a replica: a product within 1e-9 above a whole number is that number, so
  ceil(10 x 1.1) is 11 (Go's float math gives 12); Percent rate limits are computed in integers
  (the margin's edges are in docs/engine.md);
- a ratio exactly on the tolerance (e.g. 1.1 with tolerance 0.1) counts as within it, so
  |ratio - 1| <= tolerance never scales (HPA's isWithin is also inclusive; float noise aside).

The state (`PolicyState`) is the only memory: `decide` returns a new one and never mutates its
inputs. The shell records a scale event only after a successful apply.
Must not import I/O libraries or the shell (metrics, scalers, store, controller).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from gemini.policy import behavior, replicas, schedule
from gemini.policy.decision import (
    NO_EXTRA,
    OUTCOME_PAUSED,
    OUTCOME_SHADOW,
    OUTCOME_UNCHANGED,
    Capacity,
    Decision,
    MetricResult,
    MetricStatus,
    Reason,
    Step,
)
from gemini.policy.spec import BigtableTarget, FallbackPolicy, Spec
from gemini.policy.state import PolicyState, newer_than, remember
from gemini.series import Observation

_STATUS_REASON = {
    MetricStatus.MISSING: Reason.METRIC_MISSING.value,
    MetricStatus.STALE: Reason.METRIC_STALE.value,
    MetricStatus.ERROR: Reason.METRIC_ERROR.value,
}
_FALLBACK_ACTIVE = Reason.FALLBACK_ACTIVE.value
# Enum members used on every evaluation, as module constants: on Python 3.11 an Enum class
# attribute costs ~0.1 us (EnumType.__getattr__ is on the lookup path).
_OK = MetricStatus.OK
_SCALE_UP, _SCALE_DOWN, _NO_CHANGE = (
    Reason.SCALE_UP.value,
    Reason.SCALE_DOWN.value,
    Reason.NO_CHANGE.value,
)
_WITHIN_TOLERANCE = Reason.WITHIN_TOLERANCE.value
_DESIRED_WITHIN_RANGE = Reason.DESIRED_WITHIN_RANGE.value
# HPA's name for the same clip, listed right after gemini's more precise code so that readers
# who know HPA's ScalingLimited reasons find them: a count outside [min, max] is too many / too
# few replicas, and selectPolicy Disabled is reported by HPA as a rate limit.
_HPA_NAME = {
    Reason.CURRENT_ABOVE_MAX.value: Reason.TOO_MANY_REPLICAS.value,
    Reason.CURRENT_BELOW_MIN.value: Reason.TOO_FEW_REPLICAS.value,
    Reason.SCALE_UP_DISABLED.value: Reason.SCALE_UP_LIMIT.value,
    Reason.SCALE_DOWN_DISABLED.value: Reason.SCALE_DOWN_LIMIT.value,
}


def _evaluate_metric(
    metric: behavior.MetricPlan,
    obs: Observation | None,
    current: int,
    failures: int,
    rules: behavior.Resolved,
    now: datetime,
) -> tuple[MetricResult, bool]:
    """One metric's result and whether its read failed (for the failure counter)."""
    status: MetricStatus
    error: str | None = None
    value: float | None = None
    sample_at: datetime | None = None
    age: float | None = None
    if obs is None:
        status, error = MetricStatus.MISSING, "no observation"
    elif obs.error is not None:
        status, error = MetricStatus.ERROR, f"{obs.error_kind or 'error'}: {obs.error}"
    else:
        reduced = replicas.reduce(obs.samples, metric.window_seconds, metric.window_function, now)
        if reduced is None:
            status, error = MetricStatus.MISSING, "no samples"
        else:
            value, sample_at = reduced
            age = (now - sample_at).total_seconds()
            if not math.isfinite(value):
                status, error = MetricStatus.ERROR, f"invalid: value is {value}"
                value = None
            elif metric.max_age_seconds is not None and age > metric.max_age_seconds:
                status = MetricStatus.STALE
                error = f"newest sample is {age:.0f}s old (maxAgeSeconds {metric.max_age_seconds})"
            else:
                status = _OK
    if status is not _OK:
        fb = metric.metric.fallback
        reason = _STATUS_REASON[status]
        proposed: int | None = None
        if fb.policy is FallbackPolicy.REPLICAS and failures + 1 >= fb.failure_threshold:
            proposed, reason = fb.replicas, _FALLBACK_ACTIVE
        elif fb.policy is FallbackPolicy.IGNORE:
            reason = Reason.METRIC_IGNORED.value
        result = MetricResult(
            name=metric.name,
            status=status,
            value=value,
            sample_at=sample_at,
            age_seconds=age,
            target=metric.target_amount,
            target_type=metric.target_type,
            proposed=proposed,
            reason=reason,
            error=error,
            offset_seconds=metric.offset_seconds,
        )
        return result, True
    assert value is not None
    reason_s: str | None
    target_amount = metric.target_amount
    if metric.step_scaling is not None:
        proposed_n, reason_s = replicas.step_scaling(metric.step_scaling, value, current)
    else:
        assert target_amount is not None  # a metric has a target or step scaling (validated)
        proposed_n, reason_s = replicas.target_tracking(
            metric.average_value,
            target_amount,
            value,
            current,
            rules.up.tolerance,
            rules.down.tolerance,
        )
    # (positional, in field order, here and in the two constructions in `decide`: on Python
    # 3.11 keyword arguments to a class cost ~1 us a call, a tenth of a simulated tick)
    result = MetricResult(
        metric.name,
        _OK,
        value,
        sample_at,
        age,  # age_seconds
        target_amount,
        metric.target_type,
        proposed_n,
        reason_s,
        None,  # error
        value > metric.activation_value,  # active
        metric.offset_seconds,
    )
    return result, False


def _match(
    names: tuple[str, ...], observations: Sequence[Observation]
) -> Sequence[Observation | None]:
    """Observations aligned with the metric names: by name, else by position."""
    if len(observations) == len(names):
        # (strict=True costs more than the rest of this check; the lengths are equal)
        for o, n in zip(observations, names, strict=False):
            if o.metric != n:
                break
        else:
            return observations  # the usual case: one observation per metric, in order
    by_name = {o.metric: o for o in observations}
    known = set(names)
    out: list[Observation | None] = []
    for i, name in enumerate(names):
        obs = by_name.get(name)
        if obs is None and i < len(observations) and observations[i].metric not in known:
            obs = observations[i]
        out.append(obs)
    return out


def _bigtable_floor(bt: BigtableTarget, current: int, state: PolicyState, now: datetime) -> int:
    """Fewest nodes Bigtable's scale-down guardrail allows now (<= current)."""
    return behavior.percent_down_floor(
        current,
        state.scale_events,
        bt.max_scale_down_percent,
        timedelta(seconds=bt.scale_down_period_seconds),
        now,
    )


def decide(
    spec: Spec,
    state: PolicyState,
    observations: Sequence[Observation],
    capacity: Capacity,
    now: datetime,
    *,
    policy: str = "",
) -> tuple[Decision, PolicyState]:
    """Decide the desired capacity. Pure: same inputs, same outputs."""
    rules = behavior.resolve(spec)
    current = capacity.current
    steps: list[Step] = []
    reasons: list[str] = []

    def note(stage: str, value: int, reason: str) -> None:
        steps.append(Step(stage, value, reason))
        for code in (reason, _HPA_NAME.get(reason)):
            if code is not None and code not in reasons:
                reasons.append(code)

    # 1-2. metrics and proposals ------------------------------------------------------------
    results: list[MetricResult] = []
    failures: list[tuple[str, int]] = []
    valid: list[int] = []
    invalid = 0
    within_tolerance = False
    matched = _match(rules.metric_names, observations)
    # equal lengths by construction: _match gives one per metric name
    for metric, obs in zip(rules.metrics, matched, strict=False):
        count = state.failure_count(metric.name) if state.failures else 0
        result, failed = _evaluate_metric(metric, obs, current, count, rules, now)
        results.append(result)
        if result.reason == _WITHIN_TOLERANCE:
            within_tolerance = True
        if failed:
            failures.append((metric.name, count + 1))
        if result.proposed is not None:
            valid.append(result.proposed)
        elif failed and not metric.ignored:
            invalid += 1
        if failed and result.reason is not None and result.reason not in reasons:
            reasons.append(result.reason)

    # 4a. effective bounds ---------------------------------------------------------------------
    lo, hi = rules.min_replicas, rules.max_replicas
    if rules.schedules:
        bounds = schedule.bounds(lo, hi, rules.schedules, now)
        lo, hi = bounds.min_replicas, bounds.max_replicas
        if bounds.active:
            note("schedule", current, Reason.SCHEDULE_ACTIVE.value)

    any_active = False
    for r in results:
        if r.active or (r.reason == _FALLBACK_ACTIVE and (r.proposed or 0) > 0):
            any_active = True
            break
    last_active = state.last_active_at
    if any_active or last_active is None:
        last_active = now

    failures.sort()
    recommendations = state.recommendations
    recommendation: int | None = None
    desired = current
    behaviors = True
    limited = False  # a rate policy or Bigtable's guardrail clipped the stabilized count

    bt = rules.bigtable
    if current == 0 and not rules.zero_allowed:
        # HPA: replicas set to 0 by hand with minReplicas > 0 disables autoscaling. A policy
        # that may scale to zero itself (a schedule's minReplicas 0 too) is not disabled by
        # it: it leaves zero by activation, or for the bound once the schedule ends.
        desired, behaviors = 0, False
        note("bounds", 0, Reason.SCALING_DISABLED.value)
    elif current > hi:
        desired, behaviors = hi, False
        note("bounds", hi, Reason.CURRENT_ABOVE_MAX.value)
        if bt is not None:
            # a lowered max (schedule, edited spec) must not drop nodes faster than the guardrail
            floor = _bigtable_floor(bt, current, state, now)
            if desired < floor:
                desired = floor
                note("guardrail", desired, Reason.BIGTABLE_SCALE_DOWN_LIMIT.value)
    elif current < lo:
        desired, behaviors = lo, False
        note("bounds", lo, Reason.CURRENT_BELOW_MIN.value)
    elif not valid:
        behaviors = False
        note("combine", current, Reason.NO_VALID_METRICS.value)
    else:
        combined = max(valid)
        if invalid and combined < current:
            behaviors = False
            note("combine", current, Reason.SCALE_DOWN_HELD_INVALID_METRIC.value)
        else:
            recommendation = combined

    activating = False
    if recommendation is not None and lo == 0:
        # 4b. activation and scale to/from zero (KEDA semantics) ------------------------------
        if current == 0:
            if any_active:
                recommendation = max(recommendation, 1)
                activating = True
                note("activation", recommendation, Reason.ACTIVATED.value)
            else:
                recommendation, behaviors, desired = None, False, 0
                note("activation", 0, Reason.INACTIVE.value)
        elif not any_active and not invalid:
            idle = now - last_active
            if idle >= timedelta(seconds=spec.scale_to_zero.cooldown_seconds):
                recommendation, behaviors, desired = None, False, 0
                note("activation", 0, Reason.SCALE_TO_ZERO.value)
            else:
                recommendation = max(recommendation, 1)
                note("activation", recommendation, Reason.SCALE_TO_ZERO_COOLDOWN.value)
        else:
            # some metric is active, or an invalid metric might be: never to zero on partial data
            recommendation = max(recommendation, 1)

    if behaviors and recommendation is not None:
        # 5. stabilization ----------------------------------------------------------------------
        stabilized, why = behavior.stabilize(
            recommendation, current, state.recommendations, rules.up.window, rules.down.window, now
        )
        if why is not None:
            note("stabilization", stabilized, why)
        recommendations = remember(recommendations, now, recommendation)
        # 6. rate policies and min/max ----------------------------------------------------------
        events = state.scale_events
        desired, why = behavior.limit_rate(
            stabilized, current, lo, hi, events, rules.up, rules.down, now
        )
        if activating and desired < 1 <= stabilized:
            # from zero, the first replica is activation's business, not the rate policy's
            # (a Percent-only scale-up policy would otherwise never leave zero)
            desired = 1
        if desired != stabilized:
            limited = True
            note("rate", desired, why)
        if bt is not None and desired < current:
            floor = _bigtable_floor(bt, current, state, now)
            if desired < floor:
                desired = floor
                limited = True
                note("guardrail", desired, Reason.BIGTABLE_SCALE_DOWN_LIMIT.value)
        # 7. cooldowns ------------------------------------------------------------------------------
        if desired > current and rules.up.cooldown:
            last_up = state.last_scale_up_at
            if last_up is not None and now - last_up < rules.up.cooldown:
                desired = current
                note("cooldown", desired, Reason.SCALE_UP_COOLDOWN.value)
        elif desired < current and rules.down.cooldown:
            last = state.last_scale_at
            if last is not None and now - last < rules.down.cooldown:
                desired = current
                note("cooldown", desired, Reason.SCALE_DOWN_COOLDOWN.value)
        if bt is not None and desired != current and bt.min_change_interval_seconds:
            last = state.last_scale_at
            if last is not None and (now - last).total_seconds() < bt.min_change_interval_seconds:
                desired = current
                note("cooldown", desired, Reason.CHANGE_INTERVAL.value)

    # 8. the scaler's hard limits ------------------------------------------------------------------
    if capacity.floor is not None and desired < capacity.floor:
        desired = capacity.floor
        note("scaler", desired, capacity.floor_reason or Reason.SCALER_FLOOR.value)
    if capacity.ceiling is not None and desired > capacity.ceiling:
        desired = capacity.ceiling
        note("scaler", desired, capacity.ceiling_reason or Reason.SCALER_CEILING.value)
    if desired != current and capacity.blocked:
        note("scaler", desired, capacity.blocked)
    if desired != current and capacity.busy:
        note("scaler", desired, Reason.TARGET_BUSY.value)
    for condition in capacity.reasons:
        if condition not in reasons:
            reasons.append(condition)

    # 9. mode ---------------------------------------------------------------------------------------
    # what becomes of it when there is nothing to apply (else the shell says, after it acts)
    settled: str | None = None
    if rules.paused:
        note("mode", current, Reason.PAUSED.value)
        desired = current
        settled = OUTCOME_PAUSED
    elif rules.shadow:
        note("mode", desired, Reason.SHADOW.value)
        settled = OUTCOME_SHADOW
    elif desired == current:
        settled = OUTCOME_UNCHANGED

    if desired > current:
        outcome = _SCALE_UP
    elif desired < current:
        outcome = _SCALE_DOWN
    else:
        outcome = _NO_CHANGE
    if recommendation == current and within_tolerance:
        reasons.append(_WITHIN_TOLERANCE)
    if behaviors and recommendation is not None and not limited:
        reasons.append(_DESIRED_WITHIN_RANGE)

    new_state = PolicyState(
        newer_than(recommendations, now - rules.keep_recommendations),
        newer_than(state.scale_events, now - rules.keep_events),
        tuple(failures),
        last_active,  # last_active_at
        now,  # last_evaluated_at
    )
    decision = Decision(
        policy,
        now,  # at
        rules.mode,
        current,
        desired,
        recommendation,
        lo,  # min_replicas
        hi,  # max_replicas
        (outcome, *reasons),
        tuple(results),  # metrics
        tuple(steps),
        False,  # applied (the shell's business)
        settled,  # outcome
        rules.target_text,
        NO_EXTRA,
    )
    return decision, new_state
