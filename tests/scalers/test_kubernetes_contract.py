"""The Kubernetes scaler + source contract, run against the local API server and, opt-in, a real
cluster.

The real-cluster run is marked `cluster` and skipped unless `GEMINI_E2E=1` and `KUBECONFIG` are
set; it creates a throw-away namespace `gemini-e2e-<random>` (Deployments with the `pause`
image, an HPA) and deletes it afterwards. See docs/kubernetes.md.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Protocol

import pytest
from kubernetes import client

from gemini import kubeclient
from gemini.errors import TargetNotFound
from gemini.metrics import MetricRequest
from gemini.metrics.kubernetes import KubernetesSource
from gemini.policy.spec import Metric, Target
from gemini.scalers import ApplyStatus, TargetRef
from gemini.scalers.kubernetes import KubernetesScaler
from tests.fakes.kube import KubeServer, deployment, hpa

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class Backend(Protocol):
    namespace: str

    def api(self) -> client.ApiClient: ...
    def create_deployment(self, name: str, replicas: int) -> None: ...
    def create_hpa(self, name: str, target: str) -> None: ...
    def delete_deployment(self, name: str) -> None: ...
    def spec_replicas(self, name: str) -> int: ...


class FakeBackend:
    def __init__(self, server: KubeServer) -> None:
        self.server = server
        self.namespace = "contract"

    def api(self) -> client.ApiClient:
        return self.server.api_client()

    def create_deployment(self, name: str, replicas: int) -> None:
        self.server.put_object(deployment(name, self.namespace, replicas=replicas))

    def create_hpa(self, name: str, target: str) -> None:
        self.server.put_object(hpa(name, "Deployment", target, self.namespace))

    def delete_deployment(self, name: str) -> None:
        self.server.delete_object("apps/v1", "Deployment", name, self.namespace)

    def spec_replicas(self, name: str) -> int:
        obj = self.server.get_object("apps/v1", "Deployment", name, self.namespace)
        assert obj is not None
        return int(obj["spec"]["replicas"])


class ClusterBackend:
    """A real cluster from $KUBECONFIG, in a namespace of its own."""

    def __init__(self) -> None:
        self.namespace = f"gemini-e2e-{secrets.token_hex(3)}"
        self._api = kubeclient.api_client(kubeconfig=os.environ["KUBECONFIG"])
        client.CoreV1Api(self._api).create_namespace({"metadata": {"name": self.namespace}})

    def api(self) -> client.ApiClient:
        return kubeclient.api_client(kubeconfig=os.environ["KUBECONFIG"])

    def create_deployment(self, name: str, replicas: int) -> None:
        body = deployment(name, self.namespace, replicas=replicas)
        body.pop("status")
        body["spec"]["template"]["spec"]["containers"] = [
            {"name": "pause", "image": "registry.k8s.io/pause:3.9"}
        ]
        client.AppsV1Api(self._api).create_namespaced_deployment(self.namespace, body)

    def create_hpa(self, name: str, target: str) -> None:
        client.AutoscalingV2Api(self._api).create_namespaced_horizontal_pod_autoscaler(
            self.namespace, hpa(name, "Deployment", target, self.namespace)
        )

    def delete_deployment(self, name: str) -> None:
        client.AppsV1Api(self._api).delete_namespaced_deployment(name, self.namespace)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                client.AppsV1Api(self._api).read_namespaced_deployment(name, self.namespace)
            except client.ApiException as exc:
                if exc.status == 404:
                    return
                raise
            time.sleep(0.5)

    def spec_replicas(self, name: str) -> int:
        dep = client.AppsV1Api(self._api).read_namespaced_deployment(name, self.namespace)
        return int(dep.spec.replicas)

    def close(self) -> None:
        client.CoreV1Api(self._api).delete_namespace(self.namespace)
        self._api.close()


def _cluster_enabled() -> bool:
    return os.environ.get("GEMINI_E2E") == "1" and bool(os.environ.get("KUBECONFIG"))


@pytest.fixture(
    params=[
        pytest.param("fake", id="local-server"),
        pytest.param("cluster", id="real-cluster", marks=pytest.mark.cluster),
    ]
)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "fake":
        server = KubeServer().start()
        try:
            yield FakeBackend(server)
        finally:
            server.stop()
        return
    if not _cluster_enabled():
        pytest.skip("real-cluster contract: set GEMINI_E2E=1 and KUBECONFIG")
    real = ClusterBackend()
    try:
        yield real
    finally:
        real.close()


@pytest.fixture
def scaler(backend: Backend) -> Iterator[KubernetesScaler]:
    s = KubernetesScaler(backend.api())
    yield s
    s.close()


def ref(backend: Backend, name: str) -> TargetRef:
    target = Target.model_validate({"kubernetes": {"kind": "Deployment", "name": name}})
    return TargetRef(f"{backend.namespace}/p", backend.namespace, target)


def test_read_apply_unchanged(backend: Backend, scaler: KubernetesScaler) -> None:
    backend.create_deployment("web", 1)
    cap = scaler.capacity(ref(backend, "web"), NOW)
    assert cap.current == 1 and cap.blocked is None
    assert cap.ready is not None and 0 <= cap.ready <= 1
    result = scaler.apply(ref(backend, "web"), 2, NOW)
    assert (result.status, result.replicas) == (ApplyStatus.APPLIED, 2)
    assert backend.spec_replicas("web") == 2
    assert scaler.apply(ref(backend, "web"), 2, NOW).status is ApplyStatus.UNCHANGED
    assert scaler.capacity(ref(backend, "web"), NOW).current == 2


def test_missing_target(backend: Backend, scaler: KubernetesScaler) -> None:
    with pytest.raises(TargetNotFound):
        scaler.capacity(ref(backend, "ghost"), NOW)
    backend.create_deployment("gone", 1)
    backend.delete_deployment("gone")
    result = scaler.apply(ref(backend, "gone"), 2, NOW)
    assert (result.status, result.reason) == (ApplyStatus.FAILED, "TargetNotFound")


def test_hpa_owned_target_is_refused(backend: Backend, scaler: KubernetesScaler) -> None:
    backend.create_deployment("owned", 1)
    backend.create_hpa("owned-hpa", "owned")
    assert scaler.capacity(ref(backend, "owned"), NOW).blocked == "TargetConflict"
    result = scaler.apply(ref(backend, "owned"), 3, NOW)
    assert (result.status, result.reason) == (ApplyStatus.REFUSED, "TargetConflict")
    assert "owned-hpa" in result.message
    assert backend.spec_replicas("owned") == 1


def test_source_reads_desired_replicas(backend: Backend) -> None:
    backend.create_deployment("worker", 2)
    metric = Metric.model_validate(
        {
            "name": "workers",
            "source": {"kubernetes": {"name": "worker", "replicas": "Desired"}},
            "target": {"type": "Value", "value": 1},
        }
    )
    src = KubernetesSource(backend.api())
    try:
        [obs] = src.fetch([MetricRequest(f"{backend.namespace}/p", backend.namespace, metric)], NOW)
    finally:
        src.close()
    assert obs.latest is not None and obs.latest.value == 2.0
