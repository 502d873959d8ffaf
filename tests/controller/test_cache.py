"""The policy cache: parse results, state ownership across leadership changes, relists."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gemini.controller.cache import PolicyCache
from gemini.policy.state import PolicyState
from tests.controller.conftest import policy

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def obj(
    name: str, rv: str, state: PolicyState | None = None, uid: str = "u1", **kw: Any
) -> dict[str, Any]:
    doc = policy(name, **kw)
    doc["metadata"].update(resourceVersion=rv, uid=uid, generation=1)
    if state is not None:
        doc["status"] = {"state": state.to_status()}
    return doc


STATE = PolicyState().with_scale_event(NOW, 2, 6)


def test_a_standby_follows_the_state_the_leader_writes() -> None:
    cache = PolicyCache()
    cache.upsert(obj("a", "1"))
    assert cache.get("default/a").state == PolicyState()  # type: ignore[union-attr]
    cache.upsert(obj("a", "2", STATE))  # the leader's status write, seen through the watch
    assert cache.get("default/a").state == STATE  # type: ignore[union-attr]


def test_the_leader_keeps_its_own_newer_state_over_a_stale_status() -> None:
    cache = PolicyCache()
    cache.upsert(obj("a", "1"))
    mine = STATE.with_scale_event(NOW, 6, 8)
    cache.set_state("default/a", mine)
    cache.upsert(obj("a", "2", STATE))  # an older status arriving late
    assert cache.get("default/a").state == mine  # type: ignore[union-attr]


def test_losing_leadership_falls_back_to_status() -> None:
    cache = PolicyCache()
    cache.upsert(obj("a", "1", STATE))
    cache.set_state("default/a", STATE.with_scale_event(NOW, 6, 8))
    cache.disown_all()
    assert cache.get("default/a").state == STATE  # type: ignore[union-attr]


def test_recreated_policy_starts_fresh() -> None:
    cache = PolicyCache()
    cache.upsert(obj("a", "1"))
    cache.set_state("default/a", STATE)
    cache.upsert(obj("a", "5", uid="u2"))
    assert cache.get("default/a").state == PolicyState()  # type: ignore[union-attr]


def test_relist_of_one_namespace_deletes_only_there() -> None:
    cache = PolicyCache()
    cache.upsert(obj("a", "1"))
    cache.upsert(obj("b", "2", namespace="team"))
    cache.replace_all([], namespace="team")
    assert [e.key for e in cache.entries()] == ["default/a"]


def test_listeners_see_changes_but_not_repeats() -> None:
    cache = PolicyCache()
    seen: list[tuple[str, bool, bool]] = []
    cache.subscribe(lambda k, old, new: seen.append((k, old is None, new is None)))
    cache.upsert(obj("a", "1"))
    cache.upsert(obj("a", "1"))  # same resourceVersion: no change
    cache.delete("default/a")
    assert seen == [("default/a", True, False), ("default/a", False, True)]


def test_a_status_only_change_keeps_the_parse_and_any_other_change_parses_again() -> None:
    cache = PolicyCache()
    first = cache.upsert(obj("a", "1"))
    assert first.policy is not None
    status_write = obj("a", "2", STATE)
    status_write["metadata"]["managedFields"] = [{"manager": "gemini", "subresource": "status"}]
    assert cache.upsert(status_write).policy is first.policy  # the same parse, not a new one
    edited = obj("a", "3", STATE)
    edited["spec"]["maxReplicas"] = 7
    assert cache.upsert(edited).policy.spec.max_replicas == 7  # type: ignore[union-attr]
    labelled = obj("a", "4", STATE)
    labelled["metadata"]["labels"] = {"team": "x"}
    got = cache.upsert(labelled).policy
    assert got is not None and got.metadata.labels == {"team": "x"}
    broken = obj("a", "5", STATE)
    broken["spec"]["maxReplicas"] = -1
    entry = cache.upsert(broken)
    assert entry.policy is None and entry.error is not None
    again = obj("a", "6", STATE)
    again["spec"]["maxReplicas"] = -1
    assert cache.upsert(again).error is entry.error  # still invalid, not parsed again
