"""The `status` a policy gets: HPA-like conditions, the last decision's summary, the state.

Owns building the status document from a tick's result (pure functions, `now` passed in) and
writing it through the status subresource with a JSON merge patch (retried on 409 Conflict,
dropped on 404). `lastTransitionTime` changes only when a condition's status changes. Imports the
kubernetes client only for the write; no metric source or scaler.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gemini import kubeclient
from gemini.clock import iso
from gemini.errors import SpecError
from gemini.loop import TickResult
from gemini.policy.decision import Decision, MetricStatus, Reason
from gemini.policy.spec import API_GROUP

log = logging.getLogger(__name__)

VERSION = "v1alpha1"
PLURAL = "scalingpolicies"

ABLE_TO_SCALE = "AbleToScale"
SCALING_ACTIVE = "ScalingActive"
SCALING_LIMITED = "ScalingLimited"
READY = "Ready"
SPEC_INVALID = "SpecInvalid"
TARGET_CONFLICT = "TargetConflict"
CONDITION_ORDER = (
    READY,
    ABLE_TO_SCALE,
    SCALING_ACTIVE,
    SCALING_LIMITED,
    SPEC_INVALID,
    TARGET_CONFLICT,
)

LIMIT_REASONS = frozenset(
    {
        Reason.TOO_FEW_REPLICAS.value,
        Reason.TOO_MANY_REPLICAS.value,
        Reason.SCALE_UP_LIMIT.value,
        Reason.SCALE_DOWN_LIMIT.value,
        Reason.SCALE_UP_COOLDOWN.value,
        Reason.SCALE_DOWN_COOLDOWN.value,
        Reason.CHANGE_INTERVAL.value,
        Reason.BIGTABLE_SCALE_DOWN_LIMIT.value,
        Reason.SCALER_FLOOR.value,
        Reason.SCALER_CEILING.value,
        Reason.CURRENT_ABOVE_MAX.value,
        Reason.CURRENT_BELOW_MIN.value,
    }
)
REFUSAL_OUTCOMES = frozenset({"refused"})
FAILED_OUTCOMES = frozenset({"failed", "conflict"})


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str = ""


def merge_conditions(
    old: Sequence[Mapping[str, Any]] | None, new: Sequence[Condition], now: datetime
) -> list[dict[str, Any]]:
    """New conditions in a stable order; lastTransitionTime kept while the status is unchanged.
    Conditions of types not in `new` are kept as they were."""
    previous = {str(c.get("type")): c for c in (old or []) if isinstance(c, Mapping)}
    by_type = {c.type: c for c in new}
    out: list[dict[str, Any]] = []
    types = [t for t in CONDITION_ORDER if t in by_type or t in previous]
    types += [t for t in previous if t not in types]
    for ctype in types:
        if ctype not in by_type:
            out.append(dict(previous[ctype]))
            continue
        cond = by_type[ctype]
        status = "True" if cond.status else "False"
        before = previous.get(ctype)
        if (
            before is not None
            and before.get("status") == status
            and before.get("lastTransitionTime")
        ):
            since = str(before["lastTransitionTime"])
        else:
            since = iso(now)
        out.append(
            {
                "type": ctype,
                "status": status,
                "reason": cond.reason,
                "message": cond.message,
                "lastTransitionTime": since,
            }
        )
    return out


def _blocked_reason(d: Decision) -> str | None:
    """The scaler's refusal code recorded in the decision (e.g. TargetConflict), if any."""
    for step in d.steps:
        if step.stage == "scaler" and step.reason not in _SCALER_LIMITS:
            return step.reason
    standard = {r.value for r in Reason}
    extra = [r for r in d.reasons if r not in standard]
    return extra[-1] if extra else None


_SCALER_LIMITS = frozenset(
    {Reason.SCALER_FLOOR.value, Reason.SCALER_CEILING.value, Reason.TARGET_BUSY.value}
)


def decision_conditions(result: TickResult, blocked_message: str = "") -> list[Condition]:
    """HPA-like conditions for one tick's outcome. `blocked_message` explains a refusal the
    scaler reported while reading the target (e.g. which HPA owns it)."""
    if result.decision is None:
        reason = result.error or "FailedGetScale"
        msg = result.error_message or "the target could not be read"
        conflict = reason in {"ScaleRefused", "HpaOwnsTarget", "NativeAutoscalingEnabled"}
        return [
            Condition(READY, False, reason, msg),
            Condition(ABLE_TO_SCALE, False, "FailedGetScale", f"{reason}: {msg}"),
            Condition(
                TARGET_CONFLICT,
                conflict,
                reason if conflict else "NoConflict",
                msg if conflict else "",
            ),
            Condition(SPEC_INVALID, False, "SpecValid"),
        ]
    d = result.decision
    conds: list[Condition] = [Condition(SPEC_INVALID, False, "SpecValid")]
    outcome = d.outcome or ""
    apply = result.apply
    # AbleToScale
    if outcome in REFUSAL_OUTCOMES:
        if apply is not None:
            reason, message = apply.reason, apply.message
        else:
            reason = _blocked_reason(d) or "ScaleRefused"
            message = blocked_message or f"the scaler will not act on {d.target}: {reason}"
        conds.append(Condition(ABLE_TO_SCALE, False, reason, message))
        conds.append(Condition(TARGET_CONFLICT, True, reason, message))
    elif outcome in FAILED_OUTCOMES:
        reason = apply.reason if apply is not None else "FailedRescale"
        message = apply.message if apply is not None else ""
        conds.append(Condition(ABLE_TO_SCALE, False, "FailedUpdateScale", f"{reason}: {message}"))
        conds.append(Condition(TARGET_CONFLICT, False, "NoConflict"))
    elif outcome == "busy" or Reason.TARGET_BUSY.value in d.reasons:
        conds.append(
            Condition(ABLE_TO_SCALE, False, "TargetBusy", "an earlier change is still in progress")
        )
        conds.append(Condition(TARGET_CONFLICT, False, "NoConflict"))
    else:
        blocked = [
            s.reason
            for s in d.steps
            if s.stage == "scaler"
            and s.reason
            not in {
                Reason.SCALER_FLOOR.value,
                Reason.SCALER_CEILING.value,
                Reason.TARGET_BUSY.value,
            }
            and s.reason not in LIMIT_REASONS
        ]
        if blocked:
            conds.append(Condition(ABLE_TO_SCALE, False, blocked[0], "the scaler will not act"))
            conds.append(Condition(TARGET_CONFLICT, True, blocked[0], "the scaler will not act"))
        else:
            reason = "SucceededRescale" if d.applied else "ReadyForNewScale"
            conds.append(
                Condition(ABLE_TO_SCALE, True, reason, "the target's scale can be read and changed")
            )
            conds.append(Condition(TARGET_CONFLICT, False, "NoConflict"))
    # ScalingActive
    ok = [m for m in d.metrics if m.status is MetricStatus.OK]
    bad = [m for m in d.metrics if m.status is not MetricStatus.OK]
    if d.mode == "Paused":
        conds.append(Condition(SCALING_ACTIVE, False, "Paused", "spec.mode is Paused"))
    elif Reason.SCALING_DISABLED.value in d.reasons:
        conds.append(
            Condition(
                SCALING_ACTIVE,
                False,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )
        )
    elif not ok:
        detail = "; ".join(f"{m.name}: {m.status.value} {m.error or ''}".strip() for m in bad)
        conds.append(Condition(SCALING_ACTIVE, False, "FailedGetMetrics", detail))
    else:
        msg = "valid metrics: " + ", ".join(m.name for m in ok)
        if bad:
            msg += "; not usable: " + ", ".join(f"{m.name} ({m.status.value})" for m in bad)
        conds.append(Condition(SCALING_ACTIVE, True, "ValidMetricFound", msg))
    # ScalingLimited
    limits = [r for r in d.reasons if r in LIMIT_REASONS]
    if limits:
        conds.append(
            Condition(
                SCALING_LIMITED,
                True,
                limits[0],
                f"the desired count was limited: {', '.join(limits)}",
            )
        )
    else:
        conds.append(
            Condition(
                SCALING_LIMITED,
                False,
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            )
        )
    able = next(c for c in conds if c.type == ABLE_TO_SCALE)
    active = next(c for c in conds if c.type == SCALING_ACTIVE)
    if able.status and (active.status or d.mode == "Paused"):
        conds.append(Condition(READY, True, "Evaluated", d.summary()))
    else:
        bad_c = able if not able.status else active
        conds.append(Condition(READY, False, bad_c.reason, bad_c.message))
    return conds


def decision_summary(d: Decision) -> dict[str, Any]:
    return {
        "at": iso(d.at),
        "currentReplicas": d.current,
        "desiredReplicas": d.desired,
        "applied": d.applied,
        "outcome": d.outcome,
        "reasons": list(d.reasons),
        "metrics": [
            {
                "name": m.name,
                "value": m.value,
                "ageSeconds": None if m.age_seconds is None else round(m.age_seconds, 3),
                "target": m.target,
                "proposedReplicas": m.proposed,
                "status": m.status.value,
                **({"error": m.error} if m.error else {}),
                # a forecast: its age is the moved sample's, the value is this much older
                **({"offsetSeconds": m.offset_seconds} if m.offset_seconds else {}),
            }
            for m in d.metrics
        ],
    }


def tick_status(
    old_status: Mapping[str, Any],
    generation: int | None,
    result: TickResult,
    now: datetime,
    *,
    target: str | None = None,
    blocked_message: str = "",
) -> dict[str, Any]:
    """The status after one tick (to merge-patch over `old_status`)."""
    status: dict[str, Any] = {
        "observedGeneration": generation,
        **({"target": target} if target else {}),
        "lastEvaluationTime": iso(now),
        "state": result.state.to_status(),
        "conditions": merge_conditions(
            old_status.get("conditions"), decision_conditions(result, blocked_message), now
        ),
    }
    d = result.decision
    if d is not None:
        status["currentReplicas"] = d.current
        status["desiredReplicas"] = d.desired
        status["lastDecision"] = decision_summary(d)
        if d.applied:
            status["lastScaleTime"] = iso(now)
            status["currentReplicas"] = result.apply.replicas if result.apply else d.desired
    last = result.state.last_scale_at
    if last is not None and "lastScaleTime" not in status:
        status["lastScaleTime"] = iso(last)
    return status


def visible_key(status: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a reader of the status would notice changing (not timestamps of routine ticks, not
    sample ages). Used to skip writes that would only refresh `lastEvaluationTime` and `state`."""
    last = status.get("lastDecision") or {}
    return (
        status.get("observedGeneration"),
        status.get("currentReplicas"),
        status.get("desiredReplicas"),
        status.get("lastScaleTime"),
        tuple(
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
            for c in status.get("conditions") or []
        ),
        tuple(last.get("reasons") or ()),
        last.get("applied"),
        tuple((m.get("name"), m.get("value"), m.get("status")) for m in last.get("metrics") or []),
        len((status.get("state") or {}).get("scaleEvents") or ()),
    )


def invalid_status(
    old_status: Mapping[str, Any], generation: int | None, error: SpecError, now: datetime
) -> dict[str, Any]:
    """The status of a policy whose spec does not parse: SpecInvalid naming every field."""
    message = "; ".join(f"{path or '<root>'}: {msg}" for path, msg in error.problems)
    conds = [
        Condition(SPEC_INVALID, True, "InvalidSpec", message),
        Condition(READY, False, "SpecInvalid", message),
        Condition(SCALING_ACTIVE, False, "SpecInvalid", "the policy is not evaluated"),
    ]
    return {
        "observedGeneration": generation,
        "conditions": merge_conditions(old_status.get("conditions"), conds, now),
    }


def conflict_status(
    old_status: Mapping[str, Any], generation: int | None, owner: str, target: str, now: datetime
) -> dict[str, Any]:
    """Another policy already scales the same target: this one is not evaluated."""
    message = f"{target} is already scaled by ScalingPolicy {owner}"
    conds = [
        Condition(TARGET_CONFLICT, True, "TargetOwnedByOtherPolicy", message),
        Condition(READY, False, "TargetConflict", message),
        Condition(SPEC_INVALID, False, "SpecValid"),
    ]
    return {
        "observedGeneration": generation,
        "conditions": merge_conditions(old_status.get("conditions"), conds, now),
    }


class StatusWriter:
    """Writes status through the status subresource with a JSON merge patch.

    A merge patch without resourceVersion cannot conflict on content, but the API server may still
    answer 409 (e.g. an admission race); we retry a few times. 404 means the policy is gone.
    Returns the object the server returned (to refresh the cache) or None.
    """

    def __init__(self, custom_api: Any, retries: int = 3, timeout_seconds: float = 10.0) -> None:
        self._api = custom_api
        self._retries = retries
        self._timeout = timeout_seconds

    def patch(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        body = {"status": dict(status)}
        path = f"/apis/{API_GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status"
        for attempt in range(self._retries):
            try:
                # The client's REST layer with a plain dict: the typed method would validate its
                # arguments and deserialize the answer, costing more CPU than the request.
                out = kubeclient.request(
                    self._api.api_client,
                    "PATCH",
                    path,
                    body,
                    content_type="application/merge-patch+json",
                    timeout=self._timeout,
                )
                return out if isinstance(out, Mapping) else None
            except ApiException as exc:
                if exc.status == 404:
                    return None
                if exc.status == 409 and attempt + 1 < self._retries:
                    continue
                raise
        return None
