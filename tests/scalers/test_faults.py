"""A scripted fault sequence through `gemini.loop.tick` with real policies and the real clients.

Bigtable (the real admin client against the gRPC fake): a resize operation that fails, permission
lost then restored, node quota exhausted, the cluster resized by someone else, the storage floor,
the 10 %-per-10-minutes scale-down guardrail, and the cluster deleted mid-resize. Kubernetes (the
real `kubernetes` client against the in-repo API server): a 409 conflict retried, conflicts that
outlast the retries, 403 on `/scale`, an HPA that appears, and the Deployment deleted.

After every tick: capacity is never outside the policy's bounds or the guardrails, there is never
more than one Bigtable operation in flight, and each fault is visible as a reason (in the
decision's reasons, the apply result, or the tick's error).

Run as a script to print the sequence and its outcome as Markdown tables:
`.venv/bin/python -m tests.scalers.test_faults`
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gemini import loop
from gemini.metrics import RoutingReader
from gemini.metrics.memory import MemorySource
from gemini.policy.spec import ScalingPolicy, parse_policy
from gemini.policy.state import PolicyState
from gemini.scalers import ApplyStatus
from gemini.scalers.bigtable import BigtableScaler, admin_client_for, storage_floor
from gemini.scalers.kubernetes import KubernetesScaler
from tests.fakes.bigtable_admin import FakeBigtableAdmin, running
from tests.fakes.kube import KubeServer, deployment, hpa

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TIB = 2**40
CLUSTER = "projects/shop/instances/orders/clusters/orders-c1"

BIGTABLE_POLICY: dict[str, Any] = {
    "apiVersion": "autoscaling.gemini.dev/v1alpha1",
    "kind": "ScalingPolicy",
    "metadata": {"name": "orders-bigtable", "namespace": "data"},
    "spec": {
        "target": {
            "bigtable": {
                "project": "shop",
                "instance": "orders",
                "cluster": "orders-c1",
                "storageUtilizationTarget": 0.7,
                "maxScaleDownPercent": 10,
                "scaleDownPeriodSeconds": 600,
            }
        },
        "minReplicas": 2,
        "maxReplicas": 12,
        "metrics": [
            {
                "name": "cpu",
                "source": {
                    "bigtable": {"project": "shop", "instance": "orders", "cluster": "orders-c1"}
                },
                "target": {"type": "Utilization", "averageUtilization": 60},
            }
        ],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
    },
}

KUBE_POLICY: dict[str, Any] = {
    "apiVersion": "autoscaling.gemini.dev/v1alpha1",
    "kind": "ScalingPolicy",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "target": {"kubernetes": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}},
        "minReplicas": 1,
        "maxReplicas": 10,
        "metrics": [
            {
                "name": "cpu",
                "source": {
                    "prometheus": {
                        "serverAddress": "http://127.0.0.1:9",
                        "query": "avg(rate(cpu[1m]))",
                    }
                },
                "target": {"type": "Utilization", "averageUtilization": 60},
            }
        ],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
    },
}


@dataclass(frozen=True)
class Step:
    fault: str  # what happens before this tick
    cpu: float
    expect: str | None  # a reason code that must be visible this tick
    action: Callable[[Any], None] = lambda ctx: None
    minutes: float = 1.0  # time since the previous tick


@dataclass(frozen=True)
class Row:
    step: int
    minute: float
    fault: str
    cpu: float
    current: int | None
    desired: int | None
    outcome: str
    sent: int | None  # the count the scaler set or requested (after its own hard limits)
    reasons: tuple[str, ...]
    nodes: int | None  # the backend's count after the tick
    in_flight: int

    def visible(self) -> set[str]:
        return set(self.reasons)


# -- Bigtable ------------------------------------------------------------------------------------


class BigtableWorld:
    def __init__(self, fake: FakeBigtableAdmin) -> None:
        self.fake = fake
        self.bytes_used = 10 * TIB
        self.scaler = BigtableScaler(
            admin_client_for(fake.address),
            storage_reader=lambda ref: self.bytes_used,
            retry_deadline_seconds=0.5,
        )

    def nodes(self) -> int | None:
        cluster = self.fake.clusters.get(CLUSTER)
        return None if cluster is None else int(cluster.serve_nodes)


def bigtable_steps() -> list[Step]:
    f = "fake"

    def do(method: str, *args: Any, **kw: Any) -> Callable[[BigtableWorld], None]:
        return lambda w: getattr(getattr(w, f), method)(*args, **kw)

    def storage(tib: float) -> Callable[[BigtableWorld], None]:
        def act(w: BigtableWorld) -> None:
            w.bytes_used = tib * TIB

        return act

    def both(*acts: Callable[[BigtableWorld], None]) -> Callable[[BigtableWorld], None]:
        return lambda w: [a(w) for a in acts] and None

    return [
        Step("none (baseline, 4 nodes)", 0.62, None),
        Step(
            "CPU high; the next resize will fail",
            0.88,
            "ResizeStarted",
            do("fail_next_operation", "RESOURCE_EXHAUSTED", "zone us-central1-b has no nodes"),
        ),
        Step("resize still running", 0.88, "TargetBusy"),
        Step("the resize operation fails", 0.88, "OperationFailed", do("complete")),
        Step("the retried resize completes", 0.62, None, do("complete")),
        Step(
            "permission lost",
            0.88,
            "PermissionDenied",
            do(
                "inject",
                "PartialUpdateCluster",
                "PERMISSION_DENIED",
                "caller lacks permission",
                times=None,
            ),
        ),
        Step("permission still lost", 0.88, "PermissionDenied"),
        Step("permission restored", 0.88, "ResizeStarted", do("clear_errors")),
        Step("resize completes", 0.62, None, do("complete")),
        Step(
            "node quota exhausted",
            1.25,
            "NodeQuotaExceeded",
            do(
                "inject",
                "PartialUpdateCluster",
                "RESOURCE_EXHAUSTED",
                "node quota exceeded",
                times=None,
            ),
        ),
        Step("quota raised", 1.25, "ResizeStarted", do("clear_errors")),
        Step(
            "someone else resizes to 8 (console)",
            0.62,
            "ExternalResize",
            both(do("complete"), do("external_resize", CLUSTER, 8)),
        ),
        Step("their resize finishes", 0.62, "ResizedExternally", do("complete")),
        Step("load drops", 0.15, "BigtableScaleDownLimit"),
        Step("load still low, same 10 min", 0.15, "BigtableScaleDownLimit", do("complete")),
        Step("10 minutes later", 0.15, "ResizeStarted", minutes=10),
        Step(
            "data grows to 20 TiB (floor 6)",
            0.15,
            "StorageFloor",
            both(do("complete"), storage(20)),
            minutes=11,
        ),
        Step("data back to 10 TiB", 0.15, "ResizeStarted", storage(10), minutes=11),
        Step("cluster deleted mid-resize", 0.15, "TargetNotFound", do("delete_cluster", CLUSTER)),
        Step(
            "cluster recreated with 5 nodes",
            0.62,
            "OperationFailed",
            do("add_cluster", "shop", "orders", "orders-c1", 5),
        ),
    ]


def run_bigtable() -> tuple[list[Row], ScalingPolicy, list[tuple[datetime, int, int, int]]]:
    """Run the Bigtable sequence. Returns the rows, the policy and the applied changes
    (at, before, after, storage floor)."""
    policy = parse_policy(BIGTABLE_POLICY)
    memory = MemorySource()
    reader = RoutingReader({"bigtable": memory})
    rows: list[Row] = []
    applied: list[tuple[datetime, int, int, int]] = []
    with running(polls_to_complete=None) as fake:
        fake.add_cluster("shop", "orders", "orders-c1", 4)
        world = BigtableWorld(fake)
        state = PolicyState()
        now = T0
        for i, step in enumerate(bigtable_steps(), 1):
            now += timedelta(minutes=step.minutes)
            step.action(world)
            memory.set("cpu", step.cpu, now - timedelta(seconds=30))
            result = loop.tick(policy, state, reader=reader, scaler=world.scaler, now=now)
            state = result.state
            rows.append(_row(i, now, step, result, world.nodes(), len(fake.in_flight())))
            if result.apply is not None and result.apply.status is ApplyStatus.APPLIED:
                assert result.decision is not None
                floor = storage_floor(world.bytes_used, "SSD", 0.7)
                applied.append((now, result.decision.current, result.apply.replicas, floor))
            assert fake.max_in_flight <= 1, f"step {i}: two operations in flight"
    return rows, policy, applied


# -- Kubernetes ----------------------------------------------------------------------------------

SCALE_PATH = "/apis/apps/v1/namespaces/default/deployments/web/scale"


def kube_steps() -> list[Step]:
    def server(fn: Callable[[KubeServer], Any]) -> Callable[[KubeServer], None]:
        return lambda s: fn(s) and None

    return [
        Step("none (baseline, 3 replicas)", 0.62, None),
        Step(
            "one 409 conflict on /scale",
            0.88,
            "Scaled",
            server(lambda s: s.fail_next(SCALE_PATH, 409, method="PUT")),
        ),
        Step(
            "409 on every retry",
            0.9,
            "ScaleConflict",
            server(lambda s: s.fail_next(SCALE_PATH, 409, method="PUT", count=10)),
        ),
        Step(
            "RBAC: update on deployments/scale removed",
            0.9,
            "Forbidden",
            server(lambda s: (s.clear_faults(), s.deny("update", "deployments/scale"))),
        ),
        Step("RBAC restored", 0.9, "Scaled", server(lambda s: s.allow_all())),
        Step(
            "an HPA starts scaling the Deployment",
            1.2,
            "TargetConflict",
            server(lambda s: s.put_object(hpa("web-hpa", "Deployment", "web"))),
        ),
        Step(
            "the HPA is removed; the Deployment deleted",
            1.2,
            "TargetNotFound",
            server(
                lambda s: (
                    s.delete_object("autoscaling/v2", "HorizontalPodAutoscaler", "web-hpa"),
                    s.delete_object("apps/v1", "Deployment", "web"),
                )
            ),
        ),
    ]


def run_kubernetes() -> tuple[list[Row], ScalingPolicy]:
    policy = parse_policy(KUBE_POLICY)
    memory = MemorySource()
    reader = RoutingReader({"prometheus": memory})
    rows: list[Row] = []
    with KubeServer(bookmark_interval=0.2) as kube:
        kube.put_object(deployment("web", replicas=3))
        scaler = KubernetesScaler(kube.api_client(), timeout_seconds=5)
        state = PolicyState()
        now = T0
        try:
            for i, step in enumerate(kube_steps(), 1):
                now += timedelta(minutes=step.minutes)
                step.action(kube)
                memory.set("cpu", step.cpu, now - timedelta(seconds=30))
                result = loop.tick(policy, state, reader=reader, scaler=scaler, now=now)
                state = result.state
                obj = kube.get_object("apps/v1", "Deployment", "web")
                if obj is not None:
                    kube.settle("apps/v1", "Deployment", "web")
                replicas = None if obj is None else int(obj["spec"]["replicas"])
                rows.append(_row(i, now, step, result, replicas, 0))
        finally:
            scaler.close()
    return rows, policy


# -- shared ------------------------------------------------------------------------------------


def _row(
    i: int, now: datetime, step: Step, result: loop.TickResult, nodes: int | None, flight: int
) -> Row:
    reasons: list[str] = []
    if result.decision is not None:
        reasons.extend(result.decision.reasons)
    if result.apply is not None and result.apply.reason not in reasons:
        reasons.append(result.apply.reason)
    if result.error is not None:
        reasons.append(result.error)
    d = result.decision
    outcome = (d.outcome or "-") if d is not None else f"error: {result.error}"
    return Row(
        step=i,
        minute=(now - T0).total_seconds() / 60,
        fault=step.fault,
        cpu=step.cpu,
        current=None if d is None else d.current,
        desired=None if d is None else d.desired,
        outcome=outcome,
        sent=result.apply.replicas
        if result.apply is not None and result.apply.status is ApplyStatus.APPLIED
        else None,
        reasons=tuple(reasons),
        nodes=nodes,
        in_flight=flight,
    )


def table(rows: list[Row], count: str) -> str:
    out = [
        f"| # | min | fault | cpu | current -> desired | outcome | set | reasons | {count} after |",
        "| ---: | ---: | --- | ---: | --- | --- | ---: | --- | ---: |",
    ]
    for r in rows:
        change = "-" if r.current is None else f"{r.current} -> {r.desired}"
        nodes = "deleted" if r.nodes is None else str(r.nodes)
        out.append(
            f"| {r.step} | {r.minute:g} | {r.fault} | {r.cpu:g} | {change} | {r.outcome} | "
            f"{'-' if r.sent is None else r.sent} | "
            f"{', '.join(r.reasons)} | {nodes} |"
        )
    return "\n".join(out)


def _check_bounds(rows: list[Row], policy: ScalingPolicy) -> None:
    lo, hi = policy.spec.min_replicas, policy.spec.max_replicas
    for r in rows:
        if r.nodes is not None:
            assert lo <= r.nodes <= hi, f"step {r.step}: {r.nodes} outside [{lo}, {hi}]"
        if r.desired is not None:
            assert lo <= r.desired <= hi, f"step {r.step}: desired {r.desired} outside bounds"


def _check_expectations(rows: list[Row], steps: list[Step]) -> None:
    for r, step in zip(rows, steps, strict=True):
        if step.expect is not None:
            assert step.expect in r.visible(), f"step {r.step} ({r.fault}): {r.reasons}"


# -- tests ---------------------------------------------------------------------------------------


@dataclass
class _Cache:
    bigtable: tuple[list[Row], ScalingPolicy, list[tuple[datetime, int, int, int]]] | None = None


_cache = _Cache()


def _bigtable() -> tuple[list[Row], ScalingPolicy, list[tuple[datetime, int, int, int]]]:
    if _cache.bigtable is None:
        _cache.bigtable = run_bigtable()
    return _cache.bigtable


def test_bigtable_faults_are_each_visible_as_a_reason() -> None:
    rows, _, _ = _bigtable()
    _check_expectations(rows, bigtable_steps())


def test_bigtable_capacity_stays_within_bounds_and_guardrails() -> None:
    rows, policy, applied = _bigtable()
    _check_bounds(rows, policy)
    assert applied, "the sequence applied nothing"
    period = timedelta(seconds=600)
    for at, before, after, floor in applied:
        assert after >= floor, f"{at}: {after} nodes below the storage floor {floor}"
        if after < before:
            # removals in the period ending here never exceed max(1, 10 % of the largest size)
            recent = [(b, a) for t, b, a, _ in applied if at - period < t <= at]
            removed = sum(b - a for b, a in recent if a < b)
            peak = max(n for pair in recent for n in pair)
            assert removed <= max(1, math.floor(peak * 0.10)), f"{at}: removed {removed}"


def test_bigtable_never_stacks_operations() -> None:
    rows, _, _ = _bigtable()
    assert all(r.in_flight <= 1 for r in rows)
    busy = [r for r in rows if "TargetBusy" in r.reasons or "ExternalResize" in r.reasons]
    assert busy and all(r.outcome in {"busy", "unchanged"} for r in busy)


def test_kubernetes_faults_are_each_visible_and_bounded() -> None:
    rows, policy = run_kubernetes()
    _check_expectations(rows, kube_steps())
    _check_bounds(rows, policy)


def _iter_tables() -> Iterator[str]:
    rows, _, _ = _bigtable()
    yield "### Bigtable (real admin client, in-process gRPC BigtableInstanceAdmin)\n"
    yield table(rows, "nodes")
    krows, _ = run_kubernetes()
    yield "\n### Kubernetes (real kubernetes client, in-repo API server)\n"
    yield table(krows, "replicas")


if __name__ == "__main__":
    for chunk in _iter_tables():
        print(chunk)
