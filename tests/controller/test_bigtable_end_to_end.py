"""End to end for a Bigtable cluster: the controller's real wiring (`gemini.controller.wiring`)
with the real Cloud Monitoring and Bigtable admin clients against their in-process gRPC fakes,
the policy served by the fake Kubernetes API server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from kubernetes import client

from gemini.clock import ManualClock
from gemini.controller import wiring
from gemini.controller.runtime import Controller
from gemini.metrics.cloud_monitoring import MonitoringReader
from tests.controller.conftest import SP, eventually
from tests.controller.harness import T0, Stepper
from tests.fakes.bigtable_admin import FakeBigtableAdmin, running
from tests.fakes.kube import KubeServer
from tests.fakes.monitoring import MonitoringServer

CPU = "bigtable.googleapis.com/cluster/cpu_load"
BYTES = "bigtable.googleapis.com/disk/bytes_used"
CLUSTER = "projects/p/instances/i/clusters/c1"


@pytest.fixture
def bigtable(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBigtableAdmin]:
    with running(polls_to_complete=1) as server:
        monkeypatch.setenv("GEMINI_BIGTABLE_ADMIN_ENDPOINT", server.address)
        server.add_cluster("p", "i", "c1", 3)
        yield server


@pytest.fixture
def monitoring() -> Iterator[MonitoringServer]:
    server = MonitoringServer().start()
    yield server
    server.stop()


def cpu(mon: MonitoringServer, value: float, start: Any, minutes: int = 10) -> None:
    labels = {"project_id": "p", "instance": "i", "cluster": "c1"}
    points = [(start + timedelta(minutes=m), value) for m in range(minutes)]
    mon.service.add_series("p", CPU, "bigtable_cluster", labels, points)
    mon.service.add_series("p", BYTES, "bigtable_cluster", labels, [(t, 1e9) for t, _ in points])


def bigtable_policy() -> dict[str, Any]:
    src = {"project": "p", "instance": "i", "cluster": "c1", "metric": "cpu_load"}
    return {
        "apiVersion": SP[0],
        "kind": SP[1],
        "metadata": {"name": "bt", "namespace": "default"},
        "spec": {
            "target": {"bigtable": {"project": "p", "instance": "i", "cluster": "c1"}},
            "minReplicas": 1,
            "maxReplicas": 10,
            "intervalSeconds": 60,
            "metrics": [
                {
                    "name": "cpu",
                    "source": {"bigtable": src},
                    "target": {"type": "Utilization", "averageUtilization": 60},
                }
            ],
        },
    }


def test_scales_a_bigtable_cluster_from_its_cpu(
    kube: KubeServer, bigtable: FakeBigtableAdmin, monitoring: MonitoringServer
) -> None:
    clock = ManualClock(T0)
    cpu(monitoring, 0.9, T0 - timedelta(minutes=5))  # 90 % on 3 nodes at a 60 % target -> 5
    kube.put_object(bigtable_policy())
    api = kube.api_client()
    mon = MonitoringReader(endpoint=monitoring.endpoint)
    ctrl = Controller(
        custom_api=client.CustomObjectsApi(api),
        core_api=client.CoreV1Api(api),
        reader=wiring.build_reader(api, mon),
        scaler=wiring.build_scaler(api, mon, clock),
        clock=clock,
        watch_timeout_seconds=5,
    )
    ctrl.watcher.start()
    try:
        assert ctrl.watcher.synced.wait(5)
        ctrl.on_started_leading()
        run = Stepper(ctrl, clock)
        run.step(60)
        assert bigtable.requests("PartialUpdateCluster") == [f"{CLUSTER} serve_nodes"]
        bigtable.complete()
        assert bigtable.cluster(CLUSTER).serve_nodes == 5
        obj = eventually(lambda: kube.get_object(*SP, "bt"))
        st = obj["status"]
        assert st["desiredReplicas"] == 5 and st["target"] == "bigtable:p/i/c1"
        assert st["lastDecision"]["metrics"][0]["status"] == "ok"
        assert st["lastDecision"]["metrics"][0]["proposedReplicas"] == 5
        assert any(e["reason"] == "SuccessfulRescale" for e in kube.list_objects("v1", "Event"))
        # the metric read was batched: one ListTimeSeries for the CPU of this tick
        assert mon.stats.calls >= 1
    finally:
        ctrl.stop(timeout=5)
