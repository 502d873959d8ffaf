"""`PolicyState`: what a policy remembers between evaluations.

A frozen value: recent recommendations (for stabilization windows), recent scale events (for rate
policies and cooldowns), consecutive failure counts per metric (for fallback), when the workload
was last active (for scale to zero). It round-trips through the CR's `status.state` so a restarted
controller keeps its windows (the HPA loses them). `decide()` prunes it to the longest window, so
its size is bounded. Recommendations and events are kept oldest first (`decide` appends at
`now`; `from_status` sorts). Imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from gemini.clock import iso, parse_iso
from gemini.values import fast_init

STATE_VERSION = 1


@fast_init
@dataclass(frozen=True, slots=True)
class Recommendation:
    at: datetime
    replicas: int


@fast_init
@dataclass(frozen=True, slots=True)
class ScaleEvent:
    at: datetime
    change: int  # signed: +3 is a scale-up by 3


_Entry = TypeVar("_Entry", Recommendation, ScaleEvent)


def _at(entry: Recommendation | ScaleEvent) -> datetime:
    return entry.at


def newer_than(entries: tuple[_Entry, ...], cutoff: datetime) -> tuple[_Entry, ...]:
    """`entries` (oldest first) without those at or before `cutoff`; the same tuple if none."""
    i, n = 0, len(entries)
    while i < n and entries[i].at <= cutoff:
        i += 1
    return entries[i:] if i else entries


def remember(
    history: tuple[Recommendation, ...], at: datetime, replicas: int
) -> tuple[Recommendation, ...]:
    """`history` (oldest first) with a recommendation at `at` appended, without the entries no
    stabilization window can pick any more.

    A window is always the newest part of the history (entries after a cutoff), and it picks
    the lowest (scale-up) or highest (scale-down) recommendation in it. An entry with a newer
    one at least as high *and* a newer one at least as low is never the only lowest or highest
    in any window that holds it: those newer ones are in every such window too. Dropping it
    changes no window's result, for any window length (an edited spec's as well), and keeps a
    600 s window at 15 s to a handful of entries instead of 40, which stabilization reads on
    every evaluation."""
    newest = Recommendation(at, replicas)
    high = low = replicas
    kept = [newest]
    for rec in reversed(history):
        n = rec.replicas
        if n > high:
            high = n
            kept.append(rec)
        elif n < low:
            low = n
            kept.append(rec)
    if len(kept) == len(history) + 1:
        return (*history, newest)
    kept.reverse()
    return tuple(kept)


@fast_init
@dataclass(frozen=True, slots=True)
class PolicyState:
    recommendations: tuple[Recommendation, ...] = ()
    scale_events: tuple[ScaleEvent, ...] = ()
    failures: tuple[tuple[str, int], ...] = ()
    last_active_at: datetime | None = None
    last_evaluated_at: datetime | None = None

    # -- queries -----------------------------------------------------------------------------

    def failure_count(self, metric: str) -> int:
        for name, count in self.failures:
            if name == metric:
                return count
        return 0

    @property
    def last_scale_up_at(self) -> datetime | None:
        for event in reversed(self.scale_events):
            if event.change > 0:
                return event.at
        return None

    @property
    def last_scale_down_at(self) -> datetime | None:
        for event in reversed(self.scale_events):
            if event.change < 0:
                return event.at
        return None

    @property
    def last_scale_at(self) -> datetime | None:
        return self.scale_events[-1].at if self.scale_events else None

    # -- changes (return new values) ----------------------------------------------------------

    def with_scale_event(self, at: datetime, from_replicas: int, to_replicas: int) -> PolicyState:
        """Record a change that was actually applied. Called by the shell after apply."""
        if from_replicas == to_replicas:
            return self
        event = ScaleEvent(at, to_replicas - from_replicas)
        return replace(self, scale_events=(*self.scale_events, event))

    def pruned(
        self, now: datetime, keep_recommendations: timedelta, keep_events: timedelta
    ) -> PolicyState:
        """Drop recommendations / events at least `keep_*` old (entries are oldest first)."""
        recs = newer_than(self.recommendations, now - keep_recommendations)
        events = newer_than(self.scale_events, now - keep_events)
        if recs is self.recommendations and events is self.scale_events:
            return self
        return PolicyState(
            recommendations=recs,
            scale_events=events,
            failures=self.failures,
            last_active_at=self.last_active_at,
            last_evaluated_at=self.last_evaluated_at,
        )

    # -- status form --------------------------------------------------------------------------

    def to_status(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "recommendations": [[iso(r.at), r.replicas] for r in self.recommendations],
            "scaleEvents": [[iso(e.at), e.change] for e in self.scale_events],
            "failures": {name: count for name, count in self.failures if count},
            "lastActiveAt": iso(self.last_active_at) if self.last_active_at else None,
            "lastEvaluatedAt": iso(self.last_evaluated_at) if self.last_evaluated_at else None,
        }

    @staticmethod
    def from_status(data: Mapping[str, Any] | None) -> PolicyState:
        """Rebuild from `to_status()` output. Unknown versions or garbage give an empty state
        (losing windows is safe; refusing to start is not)."""
        if not data or data.get("version") != STATE_VERSION:
            return PolicyState()
        try:
            recs = tuple(
                sorted(
                    (
                        Recommendation(parse_iso(at), int(n))
                        for at, n in data.get("recommendations", [])
                    ),
                    key=_at,
                )
            )
            events = tuple(
                sorted(
                    (ScaleEvent(parse_iso(at), int(c)) for at, c in data.get("scaleEvents", [])),
                    key=_at,
                )
            )
            failures = tuple(
                sorted((str(k), int(v)) for k, v in (data.get("failures") or {}).items())
            )
            active = data.get("lastActiveAt")
            evaluated = data.get("lastEvaluatedAt")
            return PolicyState(
                recommendations=recs,
                scale_events=events,
                failures=failures,
                last_active_at=parse_iso(active) if active else None,
                last_evaluated_at=parse_iso(evaluated) if evaluated else None,
            )
        except (TypeError, ValueError, AttributeError):
            return PolicyState()
