"""The same contract for every DecisionStore: memory, SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from gemini.policy.decision import Decision, MetricStatus
from gemini.store import DecisionStore, StoreError, open_store
from tests.store.factory import T0, decision


@pytest.fixture
def store(store_url: str) -> DecisionStore:
    s = open_store(store_url)
    yield s  # type: ignore[misc]
    s.close()


def test_round_trip_keeps_every_field(store: DecisionStore) -> None:
    d = decision(status=MetricStatus.OK)
    missing = decision("shop/worker", 1, status=MetricStatus.MISSING, applied=False)
    store.write_many([d, missing])
    assert store.decisions("shop/web") == [d]
    assert store.decisions("shop/worker") == [missing]
    assert json.loads(store.decision_records("shop/web")[0]) == d.to_dict()


def test_newest_first_with_ties_in_write_order(store: DecisionStore) -> None:
    ds = [decision(at=float(i % 5), desired=i) for i in range(10)]
    store.write_many(ds[:6])
    store.write_many(ds[6:])
    got = store.decisions("shop/web", limit=100)
    assert [(d.at, d.desired) for d in got] == sorted(
        [(d.at, d.desired) for d in ds], key=lambda x: (x[0], x[1]), reverse=True
    )


@pytest.mark.parametrize(
    ("since", "until", "limit", "expected"),
    [
        pytest.param(None, None, 100, list(range(9, -1, -1)), id="all"),
        pytest.param(3, None, 100, list(range(9, 2, -1)), id="since-inclusive"),
        pytest.param(None, 3, 100, [2, 1, 0], id="until-exclusive"),
        pytest.param(2, 6, 100, [5, 4, 3, 2], id="window"),
        pytest.param(None, None, 3, [9, 8, 7], id="limit"),
        pytest.param(2, 6, 2, [5, 4], id="window-limit"),
        pytest.param(20, None, 100, [], id="empty"),
        pytest.param(None, None, 0, [], id="zero-limit"),
    ],
)
def test_time_filters(
    store: DecisionStore, since: int | None, until: int | None, limit: int, expected: list[int]
) -> None:
    store.write_many([decision(at=60.0 * i, desired=i) for i in range(10)])
    store.write_many([decision("other/x", 60.0 * i + 1) for i in range(10)])
    got = store.decisions(
        "shop/web",
        since=None if since is None else T0 + timedelta(minutes=since),
        until=None if until is None else T0 + timedelta(minutes=until),
        limit=limit,
    )
    assert [d.desired for d in got] == expected


def test_all_policies_query_is_newest_first(store: DecisionStore) -> None:
    store.write_many([decision("a/a", 1), decision("b/b", 3), decision("c/c", 2)])
    assert [d.policy for d in store.decisions(None)] == ["b/b", "c/c", "a/a"]


def test_policy_summary_is_the_newest_decision(store: DecisionStore) -> None:
    store.write_many([decision(at=10, desired=7, reasons=("ScaleUp", "ScaleUpLimit"))])
    # an older decision arriving later does not replace the summary, but is counted
    store.write_many([decision(at=5, desired=3), decision("sim/nasa-web", 1, mode="Shadow")])
    store.write_many(
        [decision("zz/bad", 2, status=MetricStatus.ERROR, reasons=("NoValidMetrics",))]
    )
    by = {s.policy: s for s in store.policies()}
    assert list(by) == ["shop/web", "sim/nasa-web", "zz/bad"]
    web = by["shop/web"]
    assert (web.namespace, web.name, web.desired, web.decisions) == ("shop", "web", 7, 2)
    assert web.last_reasons == ("ScaleUp", "ScaleUpLimit")
    assert web.last_at == T0 + timedelta(seconds=10)
    assert (web.min_replicas, web.max_replicas, web.target) == (2, 20, "apps/v1/Deployment/web")
    assert by["sim/nasa-web"].mode == "Shadow"
    assert (web.health, by["zz/bad"].health) == ("ok", "failing")
    api = web.to_dict()
    for key in ["namespace", "name", "target", "mode", "currentReplicas", "desiredReplicas"]:
        assert key in api
    assert api["lastDecisionAt"] == "2026-03-01T12:00:10Z"


def test_retention_by_age(store: DecisionStore) -> None:
    store.write_many([decision(at=float(i)) for i in range(10)])
    store.write_many([decision("a/b", float(i)) for i in range(4)])
    assert store.prune(older_than=T0 + timedelta(seconds=6)) == 6 + 4
    assert [d.at.second for d in store.decisions("shop/web")] == [9, 8, 7, 6]
    assert store.count() == 4
    counts = {s.policy: s.decisions for s in store.policies()}
    assert counts == {"a/b": 0, "shop/web": 4}


def test_retention_by_count_per_policy(store: DecisionStore) -> None:
    store.write_many([decision(at=float(i % 3), desired=i) for i in range(7)])
    store.write_many([decision("a/b", float(i)) for i in range(2)])
    assert store.prune(keep_last=3) == 4
    assert [d.desired for d in store.decisions("shop/web")] == [5, 2, 4]
    assert store.count("a/b") == 2
    assert store.prune(keep_last=3) == 0


def test_concurrent_writers(store_url: str) -> None:
    stores = [open_store(store_url)] if store_url.startswith("memory") else []
    writers = stores * 4 or [open_store(store_url) for _ in range(4)]
    errors: list[BaseException] = []

    def work(w: int) -> None:
        try:
            for b in range(20):
                # writers touch the same policies in opposite orders within a batch
                names = [0, 1, 2] if w % 2 else [2, 1, 0]
                writers[w].write_many(
                    [decision(f"ns/p{names[i % 3]}", w * 1000 + b * 10 + i) for i in range(10)]
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    reader = writers[0]
    assert reader.count() == 800
    summaries = {s.policy: s for s in reader.policies()}
    assert sum(s.decisions for s in summaries.values()) == 800
    newest = max(decision("ns/p0", w * 1000 + 19 * 10 + i).at for w in range(4) for i in range(10))
    assert max(s.last_at for s in summaries.values()) == newest
    for w in set(map(id, writers)):
        next(x for x in writers if id(x) == w).close()


def test_unknown_scheme_names_the_url() -> None:
    with pytest.raises(StoreError, match=r"mysql://x.*unknown scheme 'mysql'.*memory"):
        open_store("mysql://x")


def test_decision_equality_needs_all_fields() -> None:
    # guards the round-trip test: Decision equality really compares metrics and steps
    a, b = decision(), decision(value=151.0)
    assert a != b
    assert Decision.from_dict(a.to_dict()) == a


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(None, "sqlite:///gemini-decisions.sqlite", id="default"),
        pytest.param("", "sqlite:///gemini-decisions.sqlite", id="empty"),
        pytest.param("data/d.sqlite", "sqlite:///data/d.sqlite", id="bare-path"),
        pytest.param("postgres://u@h/db", "postgresql+psycopg://u@h/db", id="postgres"),
        pytest.param("postgresql://u@h/db", "postgresql+psycopg://u@h/db", id="postgresql"),
        pytest.param("memory://", "memory://", id="memory"),
    ],
)
def test_url_normalization(given: str | None, expected: str) -> None:
    from gemini.store import normalize_url

    assert normalize_url(given) == expected
