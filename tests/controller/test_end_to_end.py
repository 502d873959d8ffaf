"""End to end: the real client and scaler against the fake API server, in-memory metrics,
the scheduler driven by a ManualClock (each `step` is one second; no sleeps for time to pass).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gemini.clock import ManualClock
from gemini.controller.runtime import Controller, Deadlines
from gemini.metrics.memory import MemorySource
from tests.controller.conftest import SP, eventually, policy
from tests.controller.harness import T0, Stepper, build
from tests.fakes.kube import KubeServer, deployment, hpa

DEP = ("apps/v1", "Deployment")


@pytest.fixture
def mem() -> MemorySource:
    return MemorySource()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def started(kube: KubeServer, clock: ManualClock, mem: MemorySource) -> Iterator[Any]:
    made: list[Controller] = []

    def start(**kw: Any) -> Stepper:
        ctrl = build(kube, clock, mem, **kw)
        made.append(ctrl)
        ctrl.watcher.start()
        assert ctrl.watcher.synced.wait(5)
        ctrl.on_started_leading()
        return Stepper(ctrl, clock)

    yield start
    for ctrl in made:
        ctrl.stop(timeout=5)


def replicas(kube: KubeServer, name: str = "web") -> int:
    obj = kube.get_object(*DEP, name)
    assert obj is not None
    return int(obj["spec"]["replicas"])


def status(kube: KubeServer, name: str) -> dict[str, Any]:
    obj = kube.get_object(*SP, name)
    assert obj is not None
    return dict(obj.get("status") or {})


def condition(kube: KubeServer, name: str, ctype: str) -> dict[str, Any] | None:
    for c in status(kube, name).get("conditions", []):
        if c["type"] == ctype:
            return dict(c)
    return None


def events(kube: KubeServer, reason: str | None = None) -> list[dict[str, Any]]:
    return [e for e in kube.list_objects("v1", "Event") if reason is None or e["reason"] == reason]


def set_load(mem: MemorySource, clock: ManualClock, value: float, metric: str = "load") -> None:
    mem.set(metric, value, clock.now())


def test_scales_a_deployment_up_and_down_from_metric_changes(
    kube: KubeServer, mem: MemorySource, clock: ManualClock, started: Any
) -> None:
    kube.put_object(deployment("web", replicas=2))
    kube.put_object(policy("web"))
    run = started()
    set_load(mem, clock, 60.0)  # 60 / averageValue 10 -> 6 replicas
    run.step()
    assert replicas(kube) == 6
    st = status(kube, "web")
    assert st["desiredReplicas"] == 6 and st["currentReplicas"] == 6
    assert st["observedGeneration"] == 1
    assert st["lastScaleTime"] == "2026-01-01T12:00:01Z"
    assert st["lastDecision"]["metrics"][0]["value"] == 60.0
    assert st["lastDecision"]["metrics"][0]["ageSeconds"] == 1.0
    assert st["target"] == "Deployment/web"
    assert condition(kube, "web", "Ready")["status"] == "True"  # type: ignore[index]
    assert condition(kube, "web", "AbleToScale")["reason"] == "SucceededRescale"  # type: ignore[index]
    ev = eventually(lambda: events(kube, "SuccessfulRescale"))
    assert ev[0]["message"].startswith("New size: 6; reason: ScaleUp")
    assert ev[0]["involvedObject"]["kind"] == "ScalingPolicy"
    kube.settle(*DEP, "web")
    set_load(mem, clock, 20.0)
    run.step()
    assert replicas(kube) == 2  # window 0 in this policy: scale down at once
    assert run.ctrl.evaluations == 2


def test_policy_edited_mid_run_takes_effect_at_once(
    kube: KubeServer, mem: MemorySource, clock: ManualClock, started: Any
) -> None:
    kube.put_object(deployment("web", replicas=2))
    kube.put_object(policy("web", interval=60))
    run = started()
    set_load(mem, clock, 80.0)
    run.run_for(60)  # due at T0 (aligned start) and T0+60
    assert replicas(kube) == 8
    kube.put_object(policy("web", interval=60, max_replicas=4))  # generation 2
    eventually(lambda: run.ctrl.cache.get("default/web").generation == 2)  # type: ignore[union-attr]
    run.step()  # a changed policy is due within a second, not at the next minute
    assert replicas(kube) == 4
    st = status(kube, "web")
    assert st["observedGeneration"] == 2
    assert condition(kube, "web", "ScalingLimited")["reason"] == "CurrentAboveMax"  # type: ignore[index]


def test_deleted_policy_stops_being_evaluated(
    kube: KubeServer, mem: MemorySource, clock: ManualClock, started: Any
) -> None:
    kube.put_object(deployment("web", replicas=2))
    kube.put_object(policy("web"))
    run = started()
    set_load(mem, clock, 30.0)
    run.step()
    assert replicas(kube) == 3
    kube.delete_object(*SP, "web")
    eventually(lambda: len(run.ctrl.scheduler) == 0)
    set_load(mem, clock, 90.0)
    assert run.step() == 0
    assert replicas(kube) == 3


def test_bad_policy_next_to_good_ones(
    kube: KubeServer, mem: MemorySource, clock: ManualClock, started: Any
) -> None:
    for name in ("a", "b"):
        kube.put_object(deployment(name, replicas=1))
        kube.put_object(policy(name, target=name, metric=f"m-{name}"))
    kube.put_object(deployment("c", replicas=1))
    kube.put_object(policy("c", target="c", min_replicas=9, max_replicas=3))
    run = started()
    cond = eventually(lambda: condition(kube, "c", "SpecInvalid"))
    assert cond["status"] == "True"
    assert "spec.minReplicas" in cond["message"]
    assert status(kube, "c")["observedGeneration"] == 1
    set_load(mem, clock, 40.0, "m-a")
    set_load(mem, clock, 50.0, "m-b")
    run.step()
    assert (replicas(kube, "a"), replicas(kube, "b"), replicas(kube, "c")) == (4, 5, 1)
    ev = eventually(lambda: events(kube, "SpecInvalid"))
    assert ev[0]["type"] == "Warning" and "spec.minReplicas" in ev[0]["message"]
    # fixing it clears the condition and it starts scaling
    kube.put_object(policy("c", target="c", metric="m-a"))
    eventually(lambda: run.ctrl.cache.get("default/c").policy is not None)  # type: ignore[union-attr]
    run.step()
    assert replicas(kube, "c") == 4
    assert condition(kube, "c", "SpecInvalid")["status"] == "False"  # type: ignore[index]
    assert status(kube, "c")["observedGeneration"] == 2


def test_restart_mid_stabilization_window_does_not_scale_down_early(
    kube: KubeServer, mem: MemorySource, clock: ManualClock, started: Any
) -> None:
    kube.put_object(deployment("web", replicas=2))
    kube.put_object(policy("web", interval=10, scale_down_window=120))
    run = started()
    set_load(mem, clock, 60.0)
    run.step(10)
    assert replicas(kube) == 6
    kube.settle(*DEP, "web")
    for _ in range(3):  # wants 1, held by the 120 s down-stabilization window
        set_load(mem, clock, 10.0)
        run.step(10)
    assert replicas(kube) == 6
    run.ctrl.stop(timeout=5)  # the controller goes away mid-window
    run2 = started(identity="c2")  # a fresh controller restores status.state
    for _ in range(7):  # up to 110 s after the scale-up: still inside the window
        set_load(mem, clock, 10.0)
        run2.step(10)
    assert replicas(kube) == 6
    assert "ScaleDownStabilized" in status(kube, "web")["lastDecision"]["reasons"]
    set_load(mem, clock, 10.0)
    run2.step(10)  # 120 s: the window is over
    set_load(mem, clock, 10.0)
    run2.step(10)
    assert replicas(kube) == 1


def test_without_the_restored_state_a_restart_would_scale_down_early(
    kube: KubeServer, mem: MemorySource, clock: ManualClock, started: Any
) -> None:
    """The control experiment for the test above: drop status.state and the window is lost."""
    kube.put_object(deployment("web", replicas=2))
    kube.put_object(policy("web", interval=10, scale_down_window=120))
    run = started()
    set_load(mem, clock, 60.0)
    run.step(10)
    kube.settle(*DEP, "web")
    set_load(mem, clock, 10.0)
    run.step(10)
    assert replicas(kube) == 6
    run.ctrl.stop(timeout=5)
    obj = kube.get_object(*SP, "web")
    assert obj is not None
    obj["status"].pop("state")
    kube.put_object(obj)
    run2 = started(identity="c2")
    set_load(mem, clock, 10.0)
    run2.step(10)
    assert replicas(kube) == 1


def test_target_owned_by_an_hpa_gets_target_conflict(
    kube: KubeServer, mem: MemorySource, clock: ManualClock, started: Any
) -> None:
    kube.put_object(deployment("web", replicas=2))
    kube.put_object(hpa("web-hpa", "Deployment", "web"))
    kube.put_object(policy("web"))
    run = started()
    set_load(mem, clock, 90.0)
    run.step()
    assert replicas(kube) == 2
    cond = condition(kube, "web", "TargetConflict")
    assert cond is not None and cond["status"] == "True"
    assert cond["reason"] == "TargetConflict" and "web-hpa" in cond["message"]
    ev = eventually(lambda: events(kube, "TargetConflict"))
    assert "web-hpa" in ev[0]["message"]


def test_two_policies_on_one_target_only_the_oldest_acts(
    kube: KubeServer, mem: MemorySource, clock: ManualClock, started: Any
) -> None:
    kube.put_object(deployment("web", replicas=2))
    kube.put_object(policy("first", metric="m1"))
    kube.put_object(policy("second", metric="m2"))
    run = started()
    set_load(mem, clock, 30.0, "m1")
    set_load(mem, clock, 90.0, "m2")
    run.step()
    assert replicas(kube) == 3
    cond = eventually(lambda: condition(kube, "second", "TargetConflict"))
    assert cond["status"] == "True" and "default/first" in cond["message"]


def test_api_errors_become_conditions_and_events_then_recover(
    kube: KubeServer, mem: MemorySource, clock: ManualClock, started: Any
) -> None:
    kube.put_object(deployment("web", replicas=2))
    kube.put_object(policy("web"))
    run = started()
    set_load(mem, clock, 50.0)
    # The Deployment and its /scale: the capacity read is one GET of the object.
    kube.fail_next("/apis/apps/v1/namespaces/default/deployments/web*", 500, count=3)
    run.step()
    assert replicas(kube) == 2
    assert condition(kube, "web", "AbleToScale")["status"] == "False"  # type: ignore[index]
    assert condition(kube, "web", "Ready")["status"] == "False"  # type: ignore[index]
    eventually(lambda: events(kube, "FailedGetScale"))
    kube.clear_faults()
    run.step()
    assert replicas(kube) == 5
    assert condition(kube, "web", "Ready")["status"] == "True"  # type: ignore[index]


def test_repeated_errors_are_one_event_with_a_count(
    kube: KubeServer, mem: MemorySource, clock: ManualClock, started: Any
) -> None:
    kube.put_object(deployment("web", replicas=2))
    kube.put_object(policy("web"))
    run = started()
    mem.fail("load", "unavailable", "monitoring is down")
    for _ in range(12):
        run.step()
    found = events(kube, "FailedGetMetrics")
    assert len(found) == 1
    # created at 1 s; 2..10 s folded; bumped at 11 s (count 1 + 1 + 9); 12 s folded again
    assert found[0]["count"] == 11
    assert condition(kube, "web", "ScalingActive")["reason"] == "FailedGetMetrics"  # type: ignore[index]


def test_status_write_conflicts_and_failures_do_not_stop_scaling(
    kube: KubeServer, mem: MemorySource, clock: ManualClock, started: Any
) -> None:
    kube.put_object(deployment("web", replicas=2))
    kube.put_object(policy("web"))
    run = started()
    set_load(mem, clock, 60.0)
    path = "/apis/autoscaling.gemini.dev/v1alpha1/namespaces/default/scalingpolicies/web/status"
    kube.fail_next(path, 409, count=1)
    run.step()
    assert replicas(kube) == 6
    assert status(kube, "web")["desiredReplicas"] == 6  # retried after the 409
    kube.fail_next(path, 500, count=5)
    set_load(mem, clock, 40.0)
    run.step()
    assert replicas(kube) == 4  # scaled although its status could not be written


class SlowFor:
    """A Scaler wrapper (protocol level) that hangs on one target, like an unresponsive API."""

    def __init__(self, inner: Any, name: str, seconds: float, on: str = "capacity") -> None:
        self.inner, self.name, self.seconds, self.on = inner, name, seconds, on
        self.release = threading.Event()

    def capacity(self, ref: Any, now: Any) -> Any:
        if ref.target.kubernetes.name == self.name and self.on == "capacity":
            self.release.wait(self.seconds)
        return self.inner.capacity(ref, now)

    def apply(self, ref: Any, desired: int, now: Any) -> Any:
        if ref.target.kubernetes.name == self.name and self.on == "apply":
            self.release.wait(self.seconds)
        return self.inner.apply(ref, desired, now)


def test_a_hanging_target_does_not_delay_the_others(
    kube: KubeServer, mem: MemorySource, clock: ManualClock
) -> None:
    kube.put_object(deployment("fast", replicas=1))
    kube.put_object(deployment("slow", replicas=1))
    kube.put_object(policy("fast", target="fast"))
    kube.put_object(policy("slow", target="slow"))
    ctrl = build(kube, clock, mem, deadlines=Deadlines(capacity_seconds=0.5))
    slow = SlowFor(ctrl.scaler, "slow", 10.0)
    ctrl.scaler = slow
    ctrl.watcher.start()
    try:
        assert ctrl.watcher.synced.wait(5)
        ctrl.on_started_leading()
        set_load(mem, clock, 40.0)
        started = time.monotonic()
        Stepper(ctrl, clock).step()
        assert time.monotonic() - started < 3  # bounded by the deadline, not the 10 s hang
        assert replicas(kube, "fast") == 4
        assert replicas(kube, "slow") == 1
        cond = condition(kube, "slow", "AbleToScale")
        assert cond is not None and cond["status"] == "False"
        assert "longer than 0.5s" in cond["message"]
    finally:
        slow.release.set()
        ctrl.stop(timeout=5)


def test_a_hanging_apply_is_cut_off_by_its_deadline(
    kube: KubeServer, mem: MemorySource, clock: ManualClock
) -> None:
    for name in ("fast", "slow"):
        kube.put_object(deployment(name, replicas=1))
        kube.put_object(policy(name, target=name))
    ctrl = build(kube, clock, mem, deadlines=Deadlines(apply_seconds=0.5))
    slow = SlowFor(ctrl.scaler, "slow", 10.0, on="apply")
    ctrl.scaler = slow
    ctrl.watcher.start()
    try:
        assert ctrl.watcher.synced.wait(5)
        ctrl.on_started_leading()
        set_load(mem, clock, 40.0)
        started = time.monotonic()
        Stepper(ctrl, clock).step()
        assert time.monotonic() - started < 3  # bounded by the deadline, not the 10 s hang
        assert replicas(kube, "fast") == 4
        cond = condition(kube, "slow", "AbleToScale")
        assert cond is not None and cond["status"] == "False"
        assert (cond["reason"], cond["message"]) == (
            "FailedUpdateScale",
            "ApplyDeadlineExceeded: no answer within 0.5s",
        )
    finally:
        slow.release.set()
        ctrl.stop(timeout=5)


class HangingSource:
    """A MetricSource (protocol level) that never answers in time, like a stuck backend."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def fetch(self, requests: Any, now: Any) -> list[Any]:
        self.release.wait(10)
        return []

    def close(self) -> None:
        self.release.set()


def test_a_hanging_metric_read_is_cut_off_by_its_deadline(
    kube: KubeServer, clock: ManualClock
) -> None:
    from gemini.metrics import RoutingReader

    kube.put_object(deployment("web", replicas=3))
    kube.put_object(policy("web"))
    hanging = HangingSource()
    ctrl = build(kube, clock, MemorySource(), deadlines=Deadlines(metrics_seconds=0.5))
    ctrl.reader = RoutingReader({"recorded": hanging})
    ctrl.watcher.start()
    try:
        assert ctrl.watcher.synced.wait(5)
        ctrl.on_started_leading()
        started = time.monotonic()
        Stepper(ctrl, clock).step()
        assert time.monotonic() - started < 3
        assert replicas(kube) == 3  # never scales on missing data
        cond = condition(kube, "web", "ScalingActive")
        assert cond is not None and cond["reason"] == "FailedGetMetrics"
        assert "longer than 0.5s" in cond["message"]
    finally:
        hanging.release.set()
        ctrl.stop(timeout=5)


def test_a_batch_reads_a_namespace_of_targets_with_one_list(
    kube: KubeServer, mem: MemorySource, clock: ManualClock, started: Any
) -> None:
    for i in range(4):
        kube.put_object(deployment(f"w{i}", replicas=2))
        kube.put_object(policy(f"p{i}", target=f"w{i}"))
    kube.put_object(deployment("other", replicas=2))  # in the list, not a target
    run = started(list_threshold=3)
    set_load(mem, clock, 50.0)
    before = len(kube.log)
    run.step()
    assert [replicas(kube, f"w{i}") for i in range(4)] == [5, 5, 5, 5]
    assert replicas(kube, "other") == 2
    reads = [(r.verb, r.path) for r in list(kube.log)[before:] if r.resource == "deployments"]
    assert reads == [("list", "/apis/apps/v1/namespaces/default/deployments")]
    writes = [r for r in list(kube.log)[before:] if r.resource == "deployments/scale"]
    # Each write carries the listed resourceVersion: no GET of /scale before it.
    assert sorted((r.verb, r.status) for r in writes) == [("update", 200)] * 4


def test_status_is_written_again_after_regaining_leadership(
    kube: KubeServer, mem: MemorySource, clock: ManualClock, started: Any
) -> None:
    from kubernetes import client

    kube.put_object(deployment("web", replicas=2))
    kube.put_object(policy("web"))
    run = started()
    set_load(mem, clock, 40.0)
    run.step()
    run.step()  # the scale shows in currentReplicas
    assert status(kube, "web")["desiredReplicas"] == 4
    writes = run.ctrl.status_writes
    run.step()  # nothing visible changed: no write within the refresh interval
    assert run.ctrl.status_writes == writes and run.ctrl.status_skipped >= 1
    # Meanwhile another leader wrote its own status.
    client.CustomObjectsApi(kube.api_client()).patch_namespaced_custom_object_status(
        "autoscaling.gemini.dev",
        "v1alpha1",
        "default",
        "scalingpolicies",
        "web",
        {"status": {"desiredReplicas": 9}},
    )
    run.ctrl.on_stopped_leading()
    run.ctrl.on_started_leading()
    run.step()
    assert run.ctrl.status_writes == writes + 1
    assert status(kube, "web")["desiredReplicas"] == 4


def test_a_failed_spec_invalid_status_write_is_retried(
    kube: KubeServer, mem: MemorySource, clock: ManualClock, started: Any
) -> None:
    kube.put_object(deployment("c", replicas=1))
    kube.put_object(policy("c", target="c", min_replicas=9, max_replicas=3))
    path = "/apis/autoscaling.gemini.dev/v1alpha1/namespaces/default/scalingpolicies/c/status"
    kube.fail_next(path, 500, count=2, method="PATCH")
    started(invalid_retry_seconds=0.05)
    cond = eventually(lambda: condition(kube, "c", "SpecInvalid"))  # after two failed writes
    assert cond["status"] == "True" and "spec.minReplicas" in cond["message"]
    assert [r.status for r in kube.requests("PATCH", path)] == [500, 500, 200]


def test_spec_invalid_retries_end_with_the_controller(
    kube: KubeServer, mem: MemorySource, clock: ManualClock, started: Any
) -> None:
    kube.put_object(deployment("c", replicas=1))
    kube.put_object(policy("c", target="c", min_replicas=9, max_replicas=3))
    path = "/apis/autoscaling.gemini.dev/v1alpha1/namespaces/default/scalingpolicies/c/status"
    kube.fail_next(path, 500, count=1000, method="PATCH")
    run = started(invalid_retry_seconds=0.05)
    eventually(lambda: len(kube.requests("PATCH", path)) >= 2)  # failing, and retrying
    run.ctrl.stop(timeout=5)
    after = len(kube.requests("PATCH", path))
    time.sleep(0.5)  # ten retry intervals
    assert len(kube.requests("PATCH", path)) <= after + 1  # at most one already under way
