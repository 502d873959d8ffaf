"""Backend model dynamics on small hand-computed series."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemini.simulate.models import BigtableModel, DeploymentModel, ModelSpec, QueueModel


def test_deployment_startup_delay() -> None:
    m = DeploymentModel(capacity_per_replica=2.0, startup_seconds=120, initial=2)
    m.set_count(5, 0.0)
    # three new replicas are paid for at once but serve only from t=120
    assert m.count == 5
    assert [m.ready(t) for t in (0.0, 60.0, 119.9, 120.0)] == [2.0, 2.0, 2.0, 5.0]
    assert m.ready_capacity(120.0) == 10.0


def test_deployment_scale_down_drops_pending_first() -> None:
    m = DeploymentModel(1.0, startup_seconds=100, initial=3)
    m.set_count(6, 0.0)
    m.set_count(4, 10.0)  # two of the three starting replicas are cancelled
    assert m.count == 4
    assert m.ready(50.0) == 3.0
    assert m.ready(100.0) == 4.0
    m.set_count(1, 200.0)
    assert m.ready(200.0) == 1.0


@pytest.mark.parametrize(
    ("load", "count", "expected"),
    [(3.0, 4, 0.75), (8.0, 4, 2.0), (1.0, 0, 1.0)],
    ids=["under", "over", "no-replicas-reads-one"],
)
def test_deployment_utilization(load: float, count: int, expected: float) -> None:
    m = DeploymentModel(1.0, 0, count)
    assert m.observe("utilization", load, 0.0) == pytest.approx(expected)


def test_queue_growth_and_oldest_age() -> None:
    # 10 msg/s arrive, one worker consumes 4 msg/s.
    q = QueueModel(capacity_per_replica=4.0, startup_seconds=0, initial=1)
    q.advance(0.0, 10.0)
    q.advance(60.0, 10.0)
    assert q.backlog == pytest.approx(360.0)  # (10 - 4) x 60
    # consumed 240 of the 600 that arrived evenly over [0, 60): the oldest came at t=24
    assert q.oldest_age(60.0) == pytest.approx(36.0)
    q.advance(120.0, 10.0)
    assert q.backlog == pytest.approx(720.0)
    assert q.oldest_age(120.0) == pytest.approx(120.0 - 48.0)


def test_queue_drains_with_more_workers_and_age_returns_to_zero() -> None:
    q = QueueModel(4.0, startup_seconds=30, initial=1)
    q.advance(0.0, 10.0)
    q.advance(60.0, 10.0)  # backlog 360
    q.set_count(4, 60.0)  # 3 more workers ready at t=90
    q.advance(120.0, 2.0)
    # [60,120): arrivals 2 x 60 = 120; served 4 x 60 + 3 x 4 x 30 = 600 -> backlog 0
    assert q.backlog == pytest.approx(0.0)
    assert q.oldest_age(120.0) == 0.0
    assert q.observe("backlog", 2.0, 120.0) == pytest.approx(0.0)


def test_bigtable_linear_ramp() -> None:
    b = BigtableModel(capacity_per_node=100.0, rebalance_seconds=1200, initial=2)
    b.set_count(4, 0.0)
    assert b.count == 4
    assert b.ready(0.0) == pytest.approx(2.0)
    assert b.ready(600.0) == pytest.approx(3.0)  # two nodes half ramped
    assert b.ready(1200.0) == pytest.approx(4.0)
    # CPU = load / effective capacity
    assert b.observe("cpu", 150.0, 600.0) == pytest.approx(0.5)
    assert b.observe("cpu", 150.0, 0.0) == pytest.approx(0.75)


def test_bigtable_removes_newest_first_and_storage_floor() -> None:
    b = BigtableModel(100.0, 1200, initial=3, storage_tb=12.0)
    assert b.floor == 4  # 12 TB / (5 TB x 0.7) = 3.43 -> 4
    b.set_count(5, 0.0)
    b.set_count(4, 600.0)
    assert b.ready(600.0) == pytest.approx(3.5)
    assert b.observe("storage", 0.0, 600.0) == pytest.approx(12.0 / 20.0)
    with pytest.raises(ValueError, match="at least 1 node"):
        b.set_count(0, 700.0)


@pytest.mark.parametrize(
    ("kind", "cls"),
    [("deployment", DeploymentModel), ("queue", QueueModel), ("bigtable", BigtableModel)],
    ids=["deployment", "queue", "bigtable"],
)
def test_model_spec_builds(kind: str, cls: type) -> None:
    m = ModelSpec(kind, 2.0, initial=3).build()
    assert isinstance(m, cls)
    assert m.count == 3


def test_model_spec_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown backend kind 'lambda'"):
        ModelSpec("lambda", 1.0).build()


@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(1, 12)), min_size=1, max_size=60),
    st.sampled_from([0.0, 60.0, 600.0]),
    st.integers(1, 5),
)
@settings(max_examples=300, deadline=None)
def test_bigtable_batches_match_one_entry_per_node(
    ops: list[tuple[int, int]], ramp: float, initial: int
) -> None:
    """Nodes are kept as batches (and a cached ramped prefix); a plain list of each node's
    added-at time is the reference, through scale-ups, scale-downs and partial removals."""
    import math

    model = BigtableModel(1.0, rebalance_seconds=ramp, initial=initial)
    added = [-math.inf] * initial
    t = 0.0
    for gap, target in ops:
        t += gap * 30.0
        model.set_count(target, t)
        if target > len(added):
            added += [t] * (target - len(added))
        else:
            del added[target:]
        want = sum(1.0 if ramp <= 0 else min(1.0, max(0.0, (t - a) / ramp)) for a in added)
        assert model.count == len(added)
        assert model.ready(t) == pytest.approx(want)
