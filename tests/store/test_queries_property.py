"""Invariant: every store answers a query exactly like a brute-force filter of what was written."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gemini.store import open_store
from tests.store.factory import T0, decision

writes = st.lists(
    st.tuples(st.sampled_from(["a/x", "b/y", "c/z"]), st.integers(0, 50)), max_size=40
)
bounds = st.none() | st.integers(0, 50)


@settings(max_examples=40, deadline=None)
@given(
    rows=writes,
    policy=st.none() | st.sampled_from(["a/x", "b/y"]),
    since=bounds,
    until=bounds,
    limit=st.integers(0, 50),
    keep=st.none() | st.integers(0, 5),
)
def test_query_matches_brute_force(
    rows: list[tuple[str, int]],
    policy: str | None,
    since: int | None,
    until: int | None,
    limit: int,
    keep: int | None,
) -> None:
    written = [decision(p, float(t), desired=i) for i, (p, t) in enumerate(rows)]
    for url in ["memory://", "sqlite://"]:
        store = open_store(url)
        store.write_many(written[: len(written) // 2])
        store.write_many(written[len(written) // 2 :])
        expected = list(reversed(sorted(written, key=lambda d: (d.at, d.desired))))
        if keep is not None:
            store.prune(keep_last=keep)
            per: dict[str, int] = {}
            kept = []
            for d in expected:
                per[d.policy] = per.get(d.policy, 0) + 1
                if per[d.policy] <= keep:
                    kept.append(d)
            expected = kept
        lo = None if since is None else T0 + timedelta(seconds=since)
        hi = None if until is None else T0 + timedelta(seconds=until)
        want = [
            d
            for d in expected
            if (policy is None or d.policy == policy)
            and (lo is None or d.at >= lo)
            and (hi is None or d.at < hi)
        ][:limit]
        got = store.decisions(policy, since=lo, until=hi, limit=limit)
        assert [(d.policy, d.at, d.desired) for d in got] == [
            (d.policy, d.at, d.desired) for d in want
        ], url
        assert {s.policy: s.decisions for s in store.policies()} == {
            p: sum(1 for d in expected if d.policy == p) for p in {d.policy for d in written}
        }
        store.close()
