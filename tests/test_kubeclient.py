"""`gemini.kubeclient`: building clients, raw requests, discovery, error descriptions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from gemini import kubeclient
from tests.fakes.kube import KubeServer, deployment


@pytest.fixture
def server() -> Iterator[KubeServer]:
    with KubeServer(token="t0ken") as s:
        yield s


def test_host_with_token(server: KubeServer) -> None:
    with kubeclient.api_client(host=server.url, token="t0ken") as api:
        doc = kubeclient.request(api, "GET", "/api/v1/namespaces")
    assert [n["metadata"]["name"] for n in doc["items"]] == ["default", "kube-system"]


def test_kubeconfig_and_its_namespace(server: KubeServer, tmp_path: Path) -> None:
    path = server.write_kubeconfig(tmp_path / "kc", namespace="shop")
    assert kubeclient.default_namespace(str(path)) == "shop"
    with kubeclient.api_client(kubeconfig=str(path)) as api:
        assert kubeclient.request(api, "GET", "/api/v1/namespaces/default")["kind"] == "Namespace"


def test_default_namespace_without_a_kubeconfig(tmp_path: Path) -> None:
    assert kubeclient.default_namespace(str(tmp_path / "missing")) == "default"


def test_request_sends_json_and_raises_api_exceptions(server: KubeServer) -> None:
    server.put_object(deployment("web", replicas=1))
    with kubeclient.api_client(host=server.url, token="t0ken") as api:
        path = "/apis/apps/v1/namespaces/default/deployments/web/scale"
        out = kubeclient.request(
            api,
            "PATCH",
            path,
            {"spec": {"replicas": 4}},
            content_type="application/merge-patch+json",
        )
        assert out["spec"]["replicas"] == 4
        got = kubeclient.request(
            api, "GET", "/apis/apps/v1/deployments", query={"fieldSelector": "metadata.name=x"}
        )
        assert got["items"] == []
        with pytest.raises(client.ApiException) as err:
            kubeclient.request(api, "GET", "/apis/apps/v1/namespaces/default/deployments/nope")
    assert err.value.status == 404


@pytest.mark.parametrize(
    ("code", "kind", "reason"),
    [
        pytest.param(404, "not_found", "NotFound", id="404"),
        pytest.param(403, "permission", "Forbidden", id="403"),
        pytest.param(429, "quota", "TooManyRequests", id="429"),
        pytest.param(504, "deadline", "Timeout", id="504"),
        pytest.param(422, "invalid", "Invalid", id="422"),
        pytest.param(503, "unavailable", "ServiceUnavailable", id="503"),
        pytest.param(409, "error", "Conflict", id="409"),
    ],
)
def test_describe_reads_the_status_object(
    server: KubeServer, code: int, kind: str, reason: str
) -> None:
    path = "/api/v1/namespaces/default"
    server.fail_next(path, code, message=f"boom {code}")
    with (
        kubeclient.api_client(host=server.url, token="t0ken") as api,
        pytest.raises(client.ApiException) as err,
    ):
        kubeclient.request(api, "GET", path)
    described = kubeclient.describe(err.value)
    assert (described.code, described.kind, described.reason) == (code, kind, reason)
    assert described.message == f"boom {code}"


def test_describe_connection_errors_and_non_json_bodies() -> None:
    assert kubeclient.describe(ConnectionRefusedError("nope")).kind == "unavailable"
    plain = client.ApiException(status=502, reason="Bad Gateway")
    plain.body = "<html>bad gateway</html>"
    d = kubeclient.describe(plain)
    assert (d.code, d.kind, d.message) == (502, "unavailable", "<html>bad gateway</html>")
    status = client.ApiException(status=401, reason="Unauthorized")
    status.body = json.dumps({"kind": "Status", "reason": "Unauthorized", "message": "who?"})
    assert kubeclient.describe(status).kind == "permission"


def test_discovery_resolves_and_caches_hits_only(server: KubeServer) -> None:
    with kubeclient.api_client(host=server.url, token="t0ken") as api:
        disc = kubeclient.Discovery(api)
        dep = disc.resolve("apps/v1", "Deployment")
        assert (dep.plural, dep.namespaced, "scale" in dep.subresources) == (
            "deployments",
            True,
            True,
        )
        assert dep.path("ns", "web", "scale") == "/apis/apps/v1/namespaces/ns/deployments/web/scale"
        ns = disc.resolve("v1", "Namespace")
        assert (ns.path(None, "x"), ns.qualified) == ("/api/v1/namespaces/x", "namespaces")
        disc.resolve("apps/v1", "StatefulSet")  # same group/version: cached by the first read
        assert len(server.requests("GET", "/apis/apps/v1")) == 1
        with pytest.raises(kubeclient.UnknownKind):
            disc.resolve("example.com/v1", "Widget")
        assert not disc.served("keda.sh/v1alpha1")
        server.install_keda()
        assert disc.served("keda.sh/v1alpha1")  # misses are not cached
