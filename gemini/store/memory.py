"""In-memory `DecisionStore` (`memory://`): real code for tests, the simulator and short demos.

Keeps the JSON record of each decision like the SQL stores do, so both answer identically.
Must not import SQLAlchemy, `gemini.metrics` or `gemini.scalers`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gemini.clock import utc
from gemini.policy.decision import Decision
from gemini.store import PolicySummary, RecordStore, health_of


@dataclass(frozen=True, slots=True)
class _Row:
    seq: int
    policy: str
    at: datetime
    record: str


class MemoryStore(RecordStore):
    """Decisions in a list guarded by a lock; newest-first queries scan from the end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[_Row] = []  # kept sorted by (at, seq)
        self._summaries: dict[str, PolicySummary] = {}
        self._seq = 0

    def write_many(self, decisions: Sequence[Decision]) -> None:
        rows = []
        with self._lock:
            for d in decisions:
                self._seq += 1
                rows.append(_Row(self._seq, d.policy, utc(d.at), json.dumps(d.to_dict())))
                self._summarize(d)
            self._rows.extend(rows)
            self._rows.sort(key=lambda r: (r.at, r.seq))

    def _summarize(self, d: Decision) -> None:
        old = self._summaries.get(d.policy)
        count = (old.decisions if old else 0) + 1
        if old is not None and old.last_at > utc(d.at):
            self._summaries[d.policy] = _with_count(old, count)
            return
        self._summaries[d.policy] = PolicySummary(
            policy=d.policy,
            target=d.target,
            mode=d.mode,
            current=d.current,
            desired=d.desired,
            min_replicas=d.min_replicas,
            max_replicas=d.max_replicas,
            last_at=utc(d.at),
            last_reasons=tuple(d.reasons),
            applied=d.applied,
            health=health_of(d),
            decisions=count,
        )

    def policies(self) -> list[PolicySummary]:
        with self._lock:
            return [self._summaries[k] for k in sorted(self._summaries)]

    def decision_records(
        self,
        policy: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[str]:
        lo = utc(since) if since else None
        hi = utc(until) if until else None
        out: list[str] = []
        with self._lock:
            for row in reversed(self._rows):
                if len(out) >= limit:
                    break
                if hi is not None and row.at >= hi:
                    continue
                if lo is not None and row.at < lo:
                    break
                if policy is not None and row.policy != policy:
                    continue
                out.append(row.record)
        return out

    def count(self, policy: str | None = None) -> int:
        with self._lock:
            if policy is None:
                return len(self._rows)
            return sum(1 for r in self._rows if r.policy == policy)

    def prune(self, *, older_than: datetime | None = None, keep_last: int | None = None) -> int:
        with self._lock:
            before = len(self._rows)
            rows = self._rows
            if older_than is not None:
                cutoff = utc(older_than)
                rows = [r for r in rows if r.at >= cutoff]
            if keep_last is not None:
                seen: dict[str, int] = {}
                kept: list[_Row] = []
                for r in reversed(rows):
                    n = seen.get(r.policy, 0)
                    if n < keep_last:
                        kept.append(r)
                    seen[r.policy] = n + 1
                rows = kept[::-1]
            self._rows = rows
            counts: dict[str, int] = {}
            for r in rows:
                counts[r.policy] = counts.get(r.policy, 0) + 1
            for k, s in self._summaries.items():
                self._summaries[k] = _with_count(s, counts.get(k, 0))
            return before - len(rows)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None


def _with_count(s: PolicySummary, count: int) -> PolicySummary:
    from dataclasses import replace

    return replace(s, decisions=count)
