"""`loop.Fanout`: every sink gets every decision; a failing sink stops neither the others nor
the loop."""

from __future__ import annotations

from datetime import UTC, datetime

from gemini import loop
from gemini.policy.decision import Decision


class Collect:
    def __init__(self) -> None:
        self.seen: list[Decision] = []

    def record(self, decision: Decision) -> None:
        self.seen.append(decision)


class Broken:
    def record(self, decision: Decision) -> None:
        raise RuntimeError("sink down")


def decision() -> Decision:
    return Decision(
        policy="ns/p",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        mode="Active",
        current=2,
        desired=3,
        recommendation=3,
        min_replicas=1,
        max_replicas=5,
        reasons=("ScaleUp",),
        metrics=(),
    )


def test_every_sink_gets_the_decision_despite_a_broken_one() -> None:
    first, last = Collect(), Collect()
    fan = loop.Fanout(first, Broken(), last)
    d = decision()
    fan.record(d)
    fan.record(d)
    assert first.seen == [d, d] and last.seen == [d, d]
    assert fan.failures == 2
