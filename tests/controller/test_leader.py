"""Lease leader election against the fake API server through the real client."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from gemini.clock import SystemClock
from gemini.controller.leader import LeaderElector, LeaseConfig
from tests.controller.conftest import eventually
from tests.fakes.kube import KubeServer

FAST = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.1, "request_timeout": 0.5}


def elector(api: client.ApiClient, identity: str, **over: float) -> LeaderElector:
    cfg = LeaseConfig(namespace="gemini-system", identity=identity, **{**FAST, **over})
    return LeaderElector(client.CoordinationV1Api(api), cfg, SystemClock())


@pytest.fixture
def pair(kube: KubeServer, api: client.ApiClient) -> Iterator[tuple[LeaderElector, LeaderElector]]:
    kube.put_object(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gemini-system"}}
    )
    a, b = elector(api, "a"), elector(api, "b")
    yield a, b
    a.stop(release=False)
    b.stop(release=False)


def lease_holder(kube: KubeServer) -> str | None:
    obj = kube.get_object("coordination.k8s.io/v1", "Lease", "gemini-controller", "gemini-system")
    return None if obj is None else obj["spec"].get("holderIdentity")


def test_exactly_one_of_two_leads(
    kube: KubeServer, pair: tuple[LeaderElector, LeaderElector]
) -> None:
    a, b = pair
    a.start()
    b.start()
    eventually(lambda: a.is_leader() or b.is_leader())
    for _ in range(20):  # several renew periods: never both
        assert not (a.is_leader() and b.is_leader())
        time.sleep(0.05)
    leader = a if a.is_leader() else b
    assert lease_holder(kube) == leader.config.identity


def test_standby_takes_over_within_lease_duration_after_leader_dies(
    kube: KubeServer, pair: tuple[LeaderElector, LeaderElector]
) -> None:
    a, b = pair
    a.start()
    eventually(a.is_leader)
    b.start()
    time.sleep(0.3)
    assert not b.is_leader()
    a.stop(release=False)  # killed: no release
    killed = time.monotonic()
    eventually(b.is_leader, timeout=3)
    took = time.monotonic() - killed
    # free after lease_duration as observed by b, plus at most one retry period
    assert took <= FAST["lease_duration"] + FAST["retry_period"] + 1.0  # slack for a busy CI box
    assert lease_holder(kube) == "b"


def test_graceful_release_hands_over_at_once(
    kube: KubeServer, pair: tuple[LeaderElector, LeaderElector]
) -> None:
    a, b = pair
    a.start()
    eventually(a.is_leader)
    b.start()
    a.stop(release=True)
    assert lease_holder(kube) is None
    released = time.monotonic()
    eventually(b.is_leader, timeout=3)
    assert time.monotonic() - released < FAST["lease_duration"]


def test_leader_that_cannot_renew_stops_before_its_lease_expires(
    kube: KubeServer, pair: tuple[LeaderElector, LeaderElector]
) -> None:
    a, b = pair
    a.start()
    eventually(a.is_leader)
    renewed = time.monotonic()
    kube.fail_next(
        "/apis/coordination.k8s.io/v1/namespaces/gemini-system/leases/*", 500, count=1000
    )
    b_started = False
    stopped_at = None
    while time.monotonic() - renewed < 3:
        if not a.is_leader() and stopped_at is None:
            stopped_at = time.monotonic()
        if not b_started:
            b.start()
            b_started = True
        assert not (a.is_leader() and b.is_leader())
        time.sleep(0.02)
    assert stopped_at is not None
    # a stops acting within the renew deadline of its last renewal, before the lease expires
    assert stopped_at - renewed < FAST["lease_duration"]
    kube.clear_faults()
    eventually(lambda: a.is_leader() or b.is_leader(), timeout=3)


def test_config_rejects_inconsistent_timings() -> None:
    with pytest.raises(ValueError, match="renewDeadline"):
        LeaseConfig(namespace="x", lease_duration=5, renew_deadline=10, retry_period=2)


def test_lease_fields_are_written(
    kube: KubeServer, pair: tuple[LeaderElector, LeaderElector]
) -> None:
    a, _ = pair
    a.start()
    eventually(a.is_leader)
    obj = kube.get_object("coordination.k8s.io/v1", "Lease", "gemini-controller", "gemini-system")
    assert obj is not None
    spec = obj["spec"]
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 1
    assert spec["renewTime"] and spec["acquireTime"]
