"""BigtableScaler: the real admin client against the in-process BigtableInstanceAdmin server."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemini.errors import ScaleError, ScaleRefused, TargetNotFound
from gemini.policy.spec import BigtableTarget, NativeAutoscaling, Target
from gemini.scalers import ApplyStatus, TargetRef
from gemini.scalers import bigtable as bt
from gemini.scalers.bigtable import BigtableScaler, scale_down_floor, storage_floor
from tests.fakes.bigtable_admin import FakeBigtableAdmin, running

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
TIB = 2**40


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBigtableAdmin]:
    with running(polls_to_complete=2) as server:
        monkeypatch.setenv(bt.ENDPOINT_ENV, server.address)
        yield server


def ref(cluster: str = "c1", **options: object) -> TargetRef:
    target = Target(bigtable=BigtableTarget(project="p", instance="i", cluster=cluster, **options))
    return TargetRef("default/bt", "default", target)


def scaler(storage: dict[str, float | None] | None = None) -> BigtableScaler:
    reader = None
    if storage is not None:

        def reader(r: TargetRef) -> float | None:
            assert r.target.bigtable is not None
            return storage.get(r.target.bigtable.cluster)

    return BigtableScaler(storage_reader=reader, retry_deadline_seconds=0.5)


# -- reading -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("storage", "state", "native"),
    [
        pytest.param("SSD", "READY", None, id="ssd-ready"),
        pytest.param("HDD", "READY", None, id="hdd-ready"),
        pytest.param("SSD", "READY", (2, 12), id="native-autoscaling"),
    ],
)
def test_capacity_reads_the_cluster(
    fake: FakeBigtableAdmin, storage: str, state: str, native: tuple[int, int] | None
) -> None:
    fake.add_cluster("p", "i", "c1", 4, storage=storage, state=state, autoscaling=native)
    cap = scaler().capacity(ref(), T0)
    assert cap.current == 4 and cap.ready == 4 and not cap.busy
    assert cap.detail["storageType"] == storage and cap.detail["state"] == state
    if native is None:
        assert "nativeAutoscaling" not in cap.detail and cap.blocked is None
    else:
        assert cap.detail["nativeAutoscaling"]["minServeNodes"] == native[0]
        assert cap.detail["nativeAutoscaling"]["maxServeNodes"] == native[1]
        assert cap.blocked == "NativeAutoscalingOn"
    assert fake.requests("GetCluster") == ["projects/p/instances/i/clusters/c1"]


@pytest.mark.parametrize(
    ("bytes_used", "storage", "target", "floor"),
    [
        pytest.param(0.0, "SSD", 0.7, 1, id="empty"),
        pytest.param(3.5 * TIB, "SSD", 0.7, 1, id="ssd-exactly-one-node"),
        pytest.param(3.5 * TIB + 2**30, "SSD", 0.7, 2, id="ssd-one-gib-over"),
        pytest.param(20 * TIB, "SSD", 0.5, 8, id="ssd-half-full-target"),
        pytest.param(20 * TIB, "HDD", 0.5, 3, id="hdd-larger-nodes"),
        pytest.param(100 * TIB, "HDD", 0.7, 9, id="hdd-100-tib"),
    ],
)
def test_storage_floor(bytes_used: float, storage: str, target: float, floor: int) -> None:
    assert storage_floor(bytes_used, storage, target) == floor


@given(
    used=st.floats(min_value=0, max_value=1e16, allow_nan=False),
    storage=st.sampled_from(["SSD", "HDD"]),
    target=st.floats(min_value=0.05, max_value=1.0),
)
def test_storage_floor_is_the_least_that_fits(used: float, storage: str, target: float) -> None:
    floor = storage_floor(used, storage, target)
    per_node = bt.NODE_STORAGE_LIMIT_BYTES[storage] * target
    assert floor >= 1
    assert floor * per_node >= used * (1 - 1e-9)
    assert floor == 1 or (floor - 1) * per_node < used


def test_capacity_reports_the_storage_floor(fake: FakeBigtableAdmin) -> None:
    fake.add_cluster("p", "i", "c1", 10, storage="SSD")
    cap = scaler({"c1": 10 * TIB}).capacity(ref(storageUtilizationTarget=0.5), T0)
    assert (cap.floor, cap.floor_reason) == (4, "StorageFloor")
    assert cap.detail["bytesUsed"] == 10 * TIB


@pytest.mark.parametrize(
    "reading",
    [pytest.param(None, id="unknown"), pytest.param(RuntimeError("monitoring down"), id="error")],
)
def test_unknown_storage_keeps_only_the_one_node_floor(
    fake: FakeBigtableAdmin, reading: object
) -> None:
    fake.add_cluster("p", "i", "c1", 3)

    def reader(_: TargetRef) -> float | None:
        if isinstance(reading, Exception):
            raise reading
        return None

    cap = BigtableScaler(storage_reader=reader).capacity(ref(), T0)
    assert (cap.floor, cap.floor_reason) == (1, "MinimumOneNode")
    assert "storageError" in cap.detail


@pytest.mark.parametrize(
    ("code", "error", "reason", "words"),
    [
        pytest.param("NOT_FOUND", TargetNotFound, "TargetNotFound", "not found", id="not-found"),
        pytest.param(
            "PERMISSION_DENIED",
            ScaleRefused,
            "PermissionDenied",
            "bigtable.clusters.get",
            id="permission",
        ),
        pytest.param("INTERNAL", ScaleError, "BigtableError", "injected", id="internal"),
    ],
)
def test_capacity_errors_name_what_to_do(
    fake: FakeBigtableAdmin, code: str, error: type[Exception], reason: str, words: str
) -> None:
    fake.add_cluster("p", "i", "c1", 3)
    fake.inject("GetCluster", code, times=None)
    with pytest.raises(error) as info:
        scaler().capacity(ref(), T0)
    assert isinstance(info.value, ScaleError) and info.value.reason == reason
    assert words in str(info.value)


def test_unavailable_once_is_retried(fake: FakeBigtableAdmin) -> None:
    fake.add_cluster("p", "i", "c1", 3)
    fake.inject("GetCluster", "UNAVAILABLE", times=1)
    assert scaler().capacity(ref(), T0).current == 3
    assert len(fake.requests("GetCluster")) == 2


def test_unavailable_for_good_is_a_scale_error(fake: FakeBigtableAdmin) -> None:
    fake.add_cluster("p", "i", "c1", 3)
    fake.inject("GetCluster", "UNAVAILABLE", times=None)
    with pytest.raises(ScaleError) as info:
        scaler().capacity(ref(), T0)
    assert info.value.reason == "BigtableUnavailable"


# -- resizing and its operation ----------------------------------------------------------------


def test_resize_runs_as_an_operation_and_never_stacks(fake: FakeBigtableAdmin) -> None:
    name = fake.add_cluster("p", "i", "c1", 3)
    fake.polls_to_complete = 4  # every capacity() and apply() polls once
    s = scaler()
    result = s.apply(ref(), 5, T0)
    assert (result.status, result.replicas, result.reason) == (
        ApplyStatus.APPLIED,
        5,
        "ResizeStarted",
    )
    assert fake.requests("PartialUpdateCluster") == [f"{name} serve_nodes"]
    cap = s.capacity(ref(), T0)  # first poll: still running
    assert cap.busy and cap.current == 3 and cap.detail["operationTarget"] == 5
    again = s.apply(ref(), 7, T0)
    same = s.apply(ref(), 5, T0)
    assert again.status is ApplyStatus.BUSY and same.status is ApplyStatus.BUSY
    assert len(fake.requests("PartialUpdateCluster")) == 1
    assert fake.max_in_flight == 1
    cap = s.capacity(ref(), T0 + timedelta(seconds=15))  # fourth poll: done
    assert not cap.busy and cap.current == 5 and cap.reasons == ()
    unchanged = s.apply(ref(), 5, T0 + timedelta(seconds=15))
    assert (unchanged.status, unchanged.replicas) == (ApplyStatus.UNCHANGED, 5)
    assert len(fake.requests("PartialUpdateCluster")) == 1


def test_a_failed_operation_is_reported_once(fake: FakeBigtableAdmin) -> None:
    fake.add_cluster("p", "i", "c1", 3)
    fake.fail_next_operation("RESOURCE_EXHAUSTED", "zone us-central1-b is out of nodes")
    s = scaler()
    assert s.apply(ref(), 6, T0).status is ApplyStatus.APPLIED
    fake.complete()
    cap = s.capacity(ref(), T0)
    assert cap.current == 3 and not cap.busy
    assert cap.reasons == ("OperationFailed",)
    assert "out of nodes" in cap.detail["lastOperationError"]
    assert "RESOURCE_EXHAUSTED" in cap.detail["lastOperationError"]
    assert s.capacity(ref(), T0).reasons == ()  # reported once
    retried = s.apply(ref(), 6, T0 + timedelta(seconds=30))
    assert retried.status is ApplyStatus.APPLIED


def test_failure_found_by_apply_is_in_its_message(fake: FakeBigtableAdmin) -> None:
    fake.add_cluster("p", "i", "c1", 3)
    fake.fail_next_operation("INTERNAL", "backend hiccup")
    s = scaler()
    s.apply(ref(), 6, T0)
    fake.complete()
    result = s.apply(ref(), 6, T0 + timedelta(seconds=30))
    assert result.status is ApplyStatus.APPLIED and "backend hiccup" in result.message


@pytest.mark.parametrize(
    ("code", "status", "reason", "words"),
    [
        pytest.param(
            "FAILED_PRECONDITION",
            ApplyStatus.FAILED,
            "FailedPrecondition",
            "injected",
            id="failed-precondition",
        ),
        pytest.param(
            "RESOURCE_EXHAUSTED",
            ApplyStatus.FAILED,
            "NodeQuotaExceeded",
            "quota",
            id="node-quota",
        ),
        pytest.param(
            "PERMISSION_DENIED",
            ApplyStatus.REFUSED,
            "PermissionDenied",
            "bigtable.clusters.update, e.g. roles/bigtable.admin",
            id="permission",
        ),
        pytest.param(
            "NOT_FOUND", ApplyStatus.FAILED, "TargetNotFound", "not found", id="not-found"
        ),
        pytest.param(
            "UNAVAILABLE", ApplyStatus.FAILED, "BigtableUnavailable", "injected", id="unavailable"
        ),
    ],
)
def test_update_errors_are_results(
    fake: FakeBigtableAdmin, code: str, status: ApplyStatus, reason: str, words: str
) -> None:
    fake.add_cluster("p", "i", "c1", 3)
    fake.inject("PartialUpdateCluster", code)
    s = scaler()
    result = s.apply(ref(), 5, T0)
    assert (result.status, result.replicas, result.reason) == (status, 3, reason)
    assert words in result.message
    assert fake.in_flight() == []
    # nothing is remembered as pending: the next tick can try again
    assert s.apply(ref(), 5, T0 + timedelta(seconds=15)).status is ApplyStatus.APPLIED


def test_someone_elses_resize_makes_the_cluster_busy(fake: FakeBigtableAdmin) -> None:
    name = fake.add_cluster("p", "i", "c1", 3)
    fake.external_resize(name, 8)
    s = scaler()
    cap = s.capacity(ref(), T0)
    assert cap.busy and "ExternalResize" in cap.reasons and "someone else" in cap.detail["resizing"]
    result = s.apply(ref(), 4, T0)
    assert (result.status, result.reason) == (ApplyStatus.BUSY, "ExternalResize")
    assert fake.requests("PartialUpdateCluster") == []
    fake.complete()
    cap = s.capacity(ref(), T0)
    assert cap.current == 8 and not cap.busy


def test_a_finished_outside_change_is_noticed(fake: FakeBigtableAdmin) -> None:
    name = fake.add_cluster("p", "i", "c1", 3)
    s = scaler()
    assert s.capacity(ref(), T0).reasons == ()
    fake.set_serve_nodes(name, 9)
    cap = s.capacity(ref(), T0)
    assert (
        cap.reasons == ("ResizedExternally",) and cap.detail["resizedExternally"] == "3 -> 9 nodes"
    )
    assert s.capacity(ref(), T0).reasons == ()


# -- hard limits in apply ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nodes", "desired", "storage_tib", "expected", "reason"),
    [
        pytest.param(1, 0, None, 1, "MinimumOneNode", id="at-least-one-node"),
        pytest.param(3, 0, None, 2, "BigtableScaleDownLimit", id="zero-is-one-then-step"),
        pytest.param(10, 9, 35.0, 10, "StorageFloor", id="storage-floor-holds"),
        pytest.param(3, 2, 14.0, 4, "StorageFloor", id="storage-floor-raises"),
        pytest.param(20, 10, None, 18, "BigtableScaleDownLimit", id="ten-percent-step"),
        pytest.param(5, 1, None, 4, "BigtableScaleDownLimit", id="at-least-one-node-per-step"),
        pytest.param(4, 9, 14.0, 9, "ResizeStarted", id="scale-up-unclipped"),
    ],
)
def test_apply_enforces_hard_limits(
    fake: FakeBigtableAdmin,
    nodes: int,
    desired: int,
    storage_tib: float | None,
    expected: int,
    reason: str,
) -> None:
    fake.add_cluster("p", "i", "c1", nodes)
    used = None if storage_tib is None else storage_tib * TIB
    result = scaler({"c1": used}).apply(ref(), desired, T0)
    assert (result.replicas, result.reason) == (expected, reason)
    if expected == nodes:
        assert result.status is ApplyStatus.UNCHANGED
    else:
        assert result.status is ApplyStatus.APPLIED
        fake.complete()
        assert fake.cluster("projects/p/instances/i/clusters/c1").serve_nodes == expected


def test_scale_down_step_is_per_period_from_own_memory(fake: FakeBigtableAdmin) -> None:
    fake.add_cluster("p", "i", "c1", 20)
    s = scaler()
    r = ref(maxScaleDownPercent=10, scaleDownPeriodSeconds=600)
    assert s.apply(r, 10, T0).replicas == 18
    fake.complete()
    s.capacity(r, T0)
    held = s.apply(r, 10, T0 + timedelta(seconds=300))
    assert (held.status, held.replicas, held.reason) == (
        ApplyStatus.UNCHANGED,
        18,
        "BigtableScaleDownLimit",
    )
    later = s.apply(r, 10, T0 + timedelta(seconds=600))
    assert (later.status, later.replicas) == (ApplyStatus.APPLIED, 17)


@settings(max_examples=15, deadline=None)
@given(
    start=st.integers(min_value=1, max_value=60),
    steps=st.lists(
        st.tuples(st.integers(min_value=1, max_value=60), st.integers(min_value=1, max_value=400)),
        min_size=1,
        max_size=12,
    ),
    percent=st.sampled_from([5.0, 10.0, 25.0]),
)
def test_never_removes_more_than_the_step_allows(
    start: int, steps: list[tuple[int, int]], percent: float
) -> None:
    period = timedelta(seconds=600)
    changes: list[tuple[datetime, int, int]] = []
    with running(polls_to_complete=0) as server:
        server.add_cluster("p", "i", "c1", start)
        s = BigtableScaler(bt.admin_client_for(server.address))
        r = ref(maxScaleDownPercent=percent, scaleDownPeriodSeconds=600)
        now, current = T0, start
        for desired, gap in steps:
            now += timedelta(seconds=gap)
            result = s.apply(r, desired, now)
            assert result.replicas >= 1
            if result.status is ApplyStatus.APPLIED:
                changes.append((now, current, result.replicas))
                current = result.replicas
            assert s.capacity(r, now).current == current
        assert server.max_in_flight <= 1
    # nodes removed within any period never exceed max(1, percent of the largest size seen
    # from one period before it to its end)
    for t_i, _, _ in changes:
        window = [c for c in changes if t_i <= c[0] < t_i + period]
        around = [c for c in changes if t_i - period < c[0] < t_i + period]
        peak = max(n for c in around for n in c[1:])
        removed = sum(b - a for _, b, a in window if a < b)
        assert removed <= max(1, math.floor(peak * percent / 100 + 1e-9))


def test_scale_down_floor_counts_only_recent_removals() -> None:
    changes = [bt._Change(T0, 20, 19), bt._Change(T0 + timedelta(seconds=100), 19, 18)]
    period = timedelta(seconds=600)
    assert scale_down_floor(18, changes, 10, period, T0 + timedelta(seconds=200)) == 18
    assert scale_down_floor(18, changes, 10, period, T0 + timedelta(seconds=650)) == 18
    assert scale_down_floor(18, changes, 10, period, T0 + timedelta(seconds=800)) == 17


# -- native autoscaling ------------------------------------------------------------------------


def test_native_autoscaling_is_refused_by_default(fake: FakeBigtableAdmin) -> None:
    fake.add_cluster("p", "i", "c1", 4, autoscaling=(2, 10))
    result = scaler().apply(ref(), 6, T0)
    assert (result.status, result.reason) == (ApplyStatus.REFUSED, "NativeAutoscalingOn")
    assert "ManageLimits" in result.message
    assert fake.requests("PartialUpdateCluster") == []


@pytest.mark.parametrize(
    ("limits", "desired", "new_limits", "nodes_after"),
    [
        pytest.param((2, 10), 6, (6, 10), 6, id="raise-min"),
        pytest.param((2, 10), 12, (12, 12), 12, id="raise-max-with-min"),
        pytest.param((5, 40), 3, (4, 40), 5, id="lower-min-step-limited"),
        pytest.param((10, 100), 9, (9, 90), 10, id="lower-max-to-ten-times-min"),
    ],
)
def test_manage_limits_writes_the_native_minimum(
    fake: FakeBigtableAdmin,
    limits: tuple[int, int],
    desired: int,
    new_limits: tuple[int, int],
    nodes_after: int,
) -> None:
    name = fake.add_cluster("p", "i", "c1", limits[0], autoscaling=limits)
    s = scaler()
    r = ref(nativeAutoscaling=NativeAutoscaling.MANAGE_LIMITS)
    assert s.capacity(r, T0).blocked is None
    result = s.apply(r, desired, T0)
    assert result.status is ApplyStatus.APPLIED and result.replicas == new_limits[0]
    assert (
        "cluster_config.cluster_autoscaling_config.autoscaling_limits.min_serve_nodes"
        in (fake.requests("PartialUpdateCluster")[0])
    )
    fake.complete()
    cluster = fake.cluster(name)
    got = cluster.cluster_config.cluster_autoscaling_config.autoscaling_limits
    assert (got.min_serve_nodes, got.max_serve_nodes) == new_limits
    assert cluster.serve_nodes == nodes_after
    assert s.apply(r, new_limits[0], T0 + timedelta(hours=1)).status is ApplyStatus.UNCHANGED


def test_endpoint_override_is_required_for_the_fake(fake: FakeBigtableAdmin) -> None:
    fake.add_cluster("p", "i", "c1", 2)
    client = bt.admin_client_from_env()
    assert client.get_cluster(name="projects/p/instances/i/clusters/c1").serve_nodes == 2


def test_wrong_target_kind_is_refused() -> None:
    from gemini.policy.spec import KubernetesTarget

    r = TargetRef("default/x", "default", Target(kubernetes=KubernetesTarget(name="web")))
    s = BigtableScaler(admin_client=object())  # type: ignore[arg-type]
    with pytest.raises(ScaleRefused):
        s.capacity(r, T0)
