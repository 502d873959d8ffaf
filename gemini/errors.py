"""Error types, grouped by what the caller does about them.

- `SpecError`: permanent; the policy is wrong and will not work until edited. No retry.
- `MetricError`: transient or permanent failure to read a metric; becomes a failed observation.
- `ScaleConflict` / `TargetBusy`: the target changed under us or is mid-operation; retry next tick.
- `ScaleRefused`: the scaler will not act on this target (HPA owns it, RBAC, native autoscaling).
"""

from __future__ import annotations


class GeminiError(Exception):
    """Base class of gemini's own errors."""


class SpecError(GeminiError):
    """A policy or scenario is invalid. `problems` holds (field path, message) pairs."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems: list[tuple[str, str]] = problems or [("", message)]


class MetricError(GeminiError):
    """A metric could not be read. `kind` is a stable code (unavailable, deadline, quota,
    permission, empty, invalid, not_found, error); `retryable` says whether a retry may help."""

    def __init__(self, kind: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable


class ScaleError(GeminiError):
    """Base of scaler failures. `reason` is a stable CamelCase code for status and decisions."""

    reason = "ScaleFailed"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class ScaleConflict(ScaleError):
    """The target changed between read and write (HTTP 409, etag mismatch). Retry next tick."""

    reason = "ScaleConflict"


class TargetBusy(ScaleError):
    """An earlier change is still in progress (e.g. a Bigtable resize operation)."""

    reason = "TargetBusy"


class ScaleRefused(ScaleError):
    """The scaler will not act on this target; permanent until something outside changes."""

    reason = "ScaleRefused"


class TargetNotFound(ScaleError):
    """The target does not exist."""

    reason = "TargetNotFound"
