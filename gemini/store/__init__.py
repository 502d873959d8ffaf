"""Decision store: where every `Decision` is kept for the dashboard and for audits.

Owns the `DecisionStore` protocol, the `PolicySummary` value, the URL registry and `open_store`.
Implementations: `memory://` (in-process, real code used by tests and short demos),
`sqlite:///path` (default, embedded, WAL) and `postgresql+psycopg://...` (several controller
replicas), both through SQLAlchemy Core in `gemini.store.sql`.
Must not import `gemini.metrics`, `gemini.scalers`, `gemini.controller` or `gemini.dashboard`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from gemini.clock import iso
from gemini.policy.decision import Decision, MetricStatus, Reason

DEFAULT_URL = "sqlite:///gemini-decisions.sqlite"


class StoreError(Exception):
    """The store URL is invalid or the store cannot be reached."""


@dataclass(frozen=True, slots=True)
class PolicySummary:
    """The newest decision of one policy, as the overview and `/api/policies` show it."""

    policy: str
    target: str | None
    mode: str
    current: int
    desired: int
    min_replicas: int
    max_replicas: int
    last_at: datetime
    last_reasons: tuple[str, ...]
    applied: bool
    health: str
    decisions: int

    @property
    def namespace(self) -> str:
        return split_policy(self.policy)[0]

    @property
    def name(self) -> str:
        return split_policy(self.policy)[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "policy": self.policy,
            "target": self.target,
            "mode": self.mode,
            "currentReplicas": self.current,
            "desiredReplicas": self.desired,
            "minReplicas": self.min_replicas,
            "maxReplicas": self.max_replicas,
            "lastDecisionAt": iso(self.last_at),
            "lastReasons": list(self.last_reasons),
            "applied": self.applied,
            "health": self.health,
            "decisions": self.decisions,
        }


def split_policy(policy: str) -> tuple[str, str]:
    """ "namespace/name" -> (namespace, name); a bare name gets namespace ""."""
    ns, sep, name = policy.partition("/")
    return (ns, name) if sep else ("", ns)


_FAILING = {Reason.NO_VALID_METRICS.value}


def health_of(decision: Decision) -> str:
    """`failing` (no usable metric), `degraded` (some metric not ok, or a fallback) or `ok`."""
    if any(r in _FAILING for r in decision.reasons):
        return "failing"
    if decision.metrics and all(m.status is not MetricStatus.OK for m in decision.metrics):
        return "failing"
    if any(m.status is not MetricStatus.OK for m in decision.metrics):
        return "degraded"
    if Reason.FALLBACK_ACTIVE.value in decision.reasons:
        return "degraded"
    return "ok"


class DecisionStore(Protocol):
    """Append-mostly storage of decisions. Every method is thread-safe."""

    def write_many(self, decisions: Sequence[Decision]) -> None:
        """Store decisions (one transaction); also updates the per-policy summary."""
        ...

    def policies(self) -> list[PolicySummary]:
        """One summary per policy ever recorded, ordered by policy name."""
        ...

    def decision_records(
        self,
        policy: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[str]:
        """Stored JSON records (`Decision.to_dict()`), newest first; `since` <= at < `until`."""
        ...

    def decisions(
        self,
        policy: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[Decision]:
        """Like `decision_records`, parsed."""
        ...

    def count(self, policy: str | None = None) -> int: ...

    def prune(self, *, older_than: datetime | None = None, keep_last: int | None = None) -> int:
        """Retention: delete decisions before `older_than` and all but the newest `keep_last`
        per policy. Returns the number deleted. Summaries of policies stay."""
        ...

    def ping(self) -> None:
        """Raise if the store cannot be reached."""
        ...

    def close(self) -> None: ...


class RecordStore:
    """Shared by the implementations: `decisions()` parses what `decision_records()` returns."""

    def decision_records(
        self,
        policy: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[str]:
        raise NotImplementedError

    def decisions(
        self,
        policy: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[Decision]:
        records = self.decision_records(policy, since=since, until=until, limit=limit)
        return [Decision.from_dict(json.loads(r)) for r in records]


def _open_memory(url: str) -> DecisionStore:
    from gemini.store.memory import MemoryStore

    return MemoryStore()


def _open_sql(url: str) -> DecisionStore:
    from gemini.store.sql import SqlStore

    return SqlStore(url)


STORES: dict[str, Callable[[str], DecisionStore]] = {
    "memory": _open_memory,
    "sqlite": _open_sql,
    "postgresql": _open_sql,
    "postgresql+psycopg": _open_sql,
}


def normalize_url(url: str | None) -> str:
    """Default, bare file paths and `postgres://` / `postgresql://` to SQLAlchemy URLs."""
    if not url:
        return DEFAULT_URL
    if "://" not in url:
        return f"sqlite:///{Path(url)}"
    scheme, rest = url.split("://", 1)
    if scheme in {"postgres", "postgresql"}:
        return f"postgresql+psycopg://{rest}"
    return url


def open_store(url: str | None = None) -> DecisionStore:
    """Open (and migrate) the store named by `url`; `None` means the default SQLite file."""
    full = normalize_url(url)
    scheme = full.split("://", 1)[0]
    opener = STORES.get(scheme)
    if opener is None:
        known = ", ".join(sorted(STORES))
        raise StoreError(f"store url {url!r}: unknown scheme {scheme!r} (known: {known})")
    return opener(full)


__all__ = [
    "DEFAULT_URL",
    "STORES",
    "DecisionStore",
    "PolicySummary",
    "StoreError",
    "health_of",
    "normalize_url",
    "open_store",
    "split_policy",
]
