"""`KubernetesSource` (`source.kubernetes`) with the real client against the local API server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from gemini.metrics import RoutingReader
from gemini.metrics.kubernetes import KubernetesSource
from tests.fakes.kube import KubeServer, ScalePaths, crd, deployment, kube_server, statefulset
from tests.metrics.conftest import request

__all__ = ["kube_server"]

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def source(kube_server: KubeServer) -> Iterator[KubernetesSource]:
    src = KubernetesSource(kube_server.api_client())
    yield src
    src.close()


def kube(name: str, replicas: str = "Current", **extra: Any) -> dict[str, Any]:
    return {"kubernetes": {"name": name, "replicas": replicas, **extra}}


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        pytest.param("Current", 3.0, id="current-is-status"),
        pytest.param("Desired", 5.0, id="desired-is-spec"),
    ],
)
def test_reads_current_or_desired_replicas(
    kube_server: KubeServer, source: KubernetesSource, which: str, expected: float
) -> None:
    kube_server.put_object(deployment("worker", replicas=5))
    kube_server.set_status("apps/v1", "Deployment", "worker", replicas=3)
    [obs] = source.fetch([request("replicas", kube("worker", which))], NOW)
    assert obs.ok, obs.error
    assert obs.metric == "replicas"
    assert obs.latest is not None
    assert (obs.latest.value, obs.latest.at) == (expected, NOW)


def test_other_kinds_and_namespaces(kube_server: KubeServer, source: KubernetesSource) -> None:
    kube_server.put_object(statefulset("db", namespace="data", replicas=4))
    kube_server.register_crd(
        crd("example.com", "widgets", "Widget", scale=ScalePaths(".spec.size", ".status.size"))
    )
    kube_server.put_object(
        {
            "apiVersion": "example.com/v1alpha1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": "default"},
            "spec": {"size": 9},
            "status": {"size": 8},
        }
    )
    reqs = [
        request("db", kube("db", "Desired", kind="StatefulSet", namespace="data")),
        request("w", kube("w", "Current", kind="Widget", apiVersion="example.com/v1alpha1")),
        request("w2", kube("w", "Desired", kind="Widget", apiVersion="example.com/v1alpha1")),
    ]
    values = [o.latest.value if o.latest else None for o in source.fetch(reqs, NOW)]
    assert values == [4.0, 8.0, 9.0]


@pytest.mark.parametrize(
    ("prepare", "src", "kind", "message"),
    [
        pytest.param(
            lambda s: None,
            kube("ghost"),
            "not_found",
            "Deployment default/ghost not found",
            id="missing",
        ),
        pytest.param(
            lambda s: None,
            kube("x", kind="Gizmo", apiVersion="example.com/v1"),
            "not_found",
            "does not serve example.com/v1",
            id="unknown-group",
        ),
        pytest.param(
            lambda s: s.deny("get", "deployments/scale"),
            kube("worker"),
            "permission",
            "cannot get deployments/scale in namespace default: grant get on apps deployments/scale",
            id="forbidden",
        ),
        pytest.param(
            lambda s: s.fail_next("/apis/apps/v1/namespaces/default/deployments/worker/scale", 503),
            kube("worker"),
            "unavailable",
            "injected failure 503",
            id="server-unavailable",
        ),
        pytest.param(
            lambda s: s.put_object(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
            ),
            kube("c", kind="ConfigMap", apiVersion="v1"),
            "invalid",
            "configmaps has no /scale subresource",
            id="no-scale-subresource",
        ),
    ],
)
def test_failures_are_observations(
    kube_server: KubeServer,
    source: KubernetesSource,
    prepare: Any,
    src: dict[str, Any],
    kind: str,
    message: str,
) -> None:
    kube_server.put_object(deployment("worker", replicas=2))
    prepare(kube_server)
    good = request("good", kube("worker"))
    bad = request("bad", src)
    obs = source.fetch([bad, good], NOW)
    assert [o.metric for o in obs] == ["bad", "good"]
    assert obs[0].error_kind == kind
    assert obs[0].error is not None and message in obs[0].error
    assert obs[1].ok or kind in ("unavailable", "permission")  # same workload: same answer


def test_unreachable_server_is_unavailable(kube_server: KubeServer) -> None:
    url = kube_server.url
    kube_server.stop()
    from gemini import kubeclient

    src = KubernetesSource(kubeclient.api_client(host=url), timeout_seconds=2)
    try:
        [obs] = src.fetch([request("r", kube("worker"))], NOW)
    finally:
        src.close()
    assert obs.error_kind == "unavailable"


def test_one_read_per_workload_per_cycle(kube_server: KubeServer, source: KubernetesSource) -> None:
    kube_server.put_object(deployment("worker", replicas=2))
    reqs = [
        request(f"m{i}", kube("worker", "Desired" if i % 2 else "Current"), f"default/p{i}")
        for i in range(6)
    ]
    obs = source.fetch(reqs, NOW)
    assert all(o.ok for o in obs)
    assert (
        len(
            kube_server.requests("GET", "/apis/apps/v1/namespaces/default/deployments/worker/scale")
        )
        == 1
    )


def test_through_the_routing_reader(kube_server: KubeServer) -> None:
    kube_server.put_object(deployment("worker", replicas=6))
    reader = RoutingReader(factory=lambda kind: KubernetesSource(kube_server.api_client()))
    try:
        [obs] = reader.read([request("r", kube("worker", "Desired"))], NOW)
    finally:
        reader.close()
    assert obs.latest is not None and obs.latest.value == 6.0
