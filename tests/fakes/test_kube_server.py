"""The fake Kubernetes API server, checked through the real `kubernetes` client."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config, watch

from tests.fakes.kube import (
    KubeServer,
    ScalePaths,
    crd,
    deployment,
    hpa,
    kube_server,
    scaled_object,
    statefulset,
)

__all__ = ["kube_server"]  # the fixture, re-exported for pytest


@pytest.fixture
def api(kube_server: KubeServer) -> Iterator[client.ApiClient]:
    with kube_server.api_client() as api_client:
        yield api_client


def _status(exc: client.ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


# -- discovery -------------------------------------------------------------------------------


def test_discovery_lists_groups_and_subresources(kube_server: KubeServer, api: Any) -> None:
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "autoscaling", "coordination.k8s.io", "events.k8s.io"} <= groups
    assert "keda.sh" not in groups
    names = {r.name for r in client.AppsV1Api(api).get_api_resources().resources}
    assert {"deployments", "deployments/scale", "statefulsets/scale", "deployments/status"} <= names
    core = {r.name for r in client.CoreV1Api(api).get_api_resources().resources}
    assert {"namespaces", "events"} <= core
    kube_server.install_keda()
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert "keda.sh" in groups


def test_crd_posted_through_the_api_is_served(kube_server: KubeServer, api: Any) -> None:
    definition = crd(
        "example.com",
        "widgets",
        "Widget",
        scale=ScalePaths(".spec.size", ".status.size", ".status.selector"),
    )
    client.ApiextensionsV1Api(api).create_custom_resource_definition(definition)
    res = client.CustomObjectsApi(api).get_api_resources("example.com", "v1alpha1").resources
    assert {r.name for r in res} == {"widgets", "widgets/status", "widgets/scale"}
    co = client.CustomObjectsApi(api)
    co.create_namespaced_custom_object(
        "example.com",
        "v1alpha1",
        "default",
        "widgets",
        {
            "apiVersion": "example.com/v1alpha1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"size": 2},
        },
    )
    kube_server.set_status("example.com/v1alpha1", "Widget", "w", size=1, selector="app=w")
    scale = co.get_namespaced_custom_object_scale(
        "example.com", "v1alpha1", "default", "widgets", "w"
    )
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 1, "selector": "app=w"}
    scale["spec"]["replicas"] = 6
    co.replace_namespaced_custom_object_scale(
        "example.com", "v1alpha1", "default", "widgets", "w", scale
    )
    obj = kube_server.get_object("example.com/v1alpha1", "Widget", "w")
    assert obj is not None and obj["spec"]["size"] == 6


# -- objects, concurrency, generation ------------------------------------------------------------


def test_stale_put_is_a_409_conflict(kube_server: KubeServer, api: Any) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    apps = client.AppsV1Api(api)
    old = apps.read_namespaced_deployment("web", "default")
    fresh = apps.read_namespaced_deployment("web", "default")
    fresh.spec.replicas = 3
    apps.replace_namespaced_deployment("web", "default", fresh)
    old.spec.replicas = 4
    with pytest.raises(client.ApiException) as err:
        apps.replace_namespaced_deployment("web", "default", old)
    assert err.value.status == 409
    status = _status(err.value)
    assert status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]


@pytest.mark.parametrize(
    ("change", "bumps"),
    [
        pytest.param({"spec": {"replicas": 9}}, True, id="spec-change-bumps"),
        pytest.param({"metadata": {"labels": {"team": "x"}}}, False, id="label-change-no-bump"),
        pytest.param({"status": {"readyReplicas": 0}}, False, id="status-ignored-on-main"),
    ],
)
def test_generation_bumps_on_spec_changes_only(
    kube_server: KubeServer, api: Any, change: dict[str, Any], bumps: bool
) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    apps = client.AppsV1Api(api)
    out = apps.patch_namespaced_deployment(
        "web", "default", change, _content_type="application/merge-patch+json"
    )
    assert out.metadata.generation == (2 if bumps else 1)
    assert out.status.ready_replicas == 2  # status only changes through /status


def test_status_subresource_changes_status_only(kube_server: KubeServer, api: Any) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    apps = client.AppsV1Api(api)
    before = apps.read_namespaced_deployment("web", "default")
    out = apps.patch_namespaced_deployment_status(
        "web",
        "default",
        {"spec": {"replicas": 7}, "status": {"readyReplicas": 1}},
        _content_type="application/merge-patch+json",
    )
    assert out.spec.replicas == 2
    assert out.status.ready_replicas == 1
    assert out.metadata.generation == 1
    assert int(out.metadata.resource_version) > int(before.metadata.resource_version)


def test_noop_update_keeps_resource_version(kube_server: KubeServer, api: Any) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    apps = client.AppsV1Api(api)
    cur = apps.read_namespaced_deployment("web", "default")
    again = apps.replace_namespaced_deployment("web", "default", cur)
    assert again.metadata.resource_version == cur.metadata.resource_version


def test_json_patch_and_patch_precondition(kube_server: KubeServer, api: Any) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    apps = client.AppsV1Api(api)
    out = apps.patch_namespaced_deployment(
        "web", "default", [{"op": "replace", "path": "/spec/replicas", "value": 5}]
    )
    assert out.spec.replicas == 5
    with pytest.raises(client.ApiException) as err:
        apps.patch_namespaced_deployment(
            "web",
            "default",
            {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 1}},
            _content_type="application/merge-patch+json",
        )
    assert err.value.status == 409


def test_not_found_and_missing_namespace(kube_server: KubeServer, api: Any) -> None:
    apps = client.AppsV1Api(api)
    with pytest.raises(client.ApiException) as err:
        apps.read_namespaced_deployment_scale("nope", "default")
    assert err.value.status == 404
    assert _status(err.value)["message"] == 'deployments.apps "nope" not found'
    with pytest.raises(client.ApiException) as err:
        client.CoreV1Api(api).create_namespaced_config_map(
            "ghost", {"metadata": {"name": "c"}, "data": {}}
        )
    assert err.value.status == 404


def test_list_with_selectors_and_pages(kube_server: KubeServer, api: Any) -> None:
    for i in range(5):
        kube_server.put_object(deployment(f"d{i}", labels={"app": "a" if i % 2 else "b"}))
    apps = client.AppsV1Api(api)
    picked = apps.list_namespaced_deployment("default", label_selector="app=a")
    assert [d.metadata.name for d in picked.items] == ["d1", "d3"]
    first = apps.list_namespaced_deployment("default", limit=2)
    rest = apps.list_namespaced_deployment("default", limit=10, _continue=first.metadata._continue)
    assert len(first.items) == 2 and len(rest.items) == 3
    assert int(first.metadata.resource_version) == kube_server.resource_version
    named = apps.list_deployment_for_all_namespaces(field_selector="metadata.name=d4")
    assert [d.metadata.name for d in named.items] == ["d4"]


# -- scale -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("builder", "read", "replace"),
    [
        pytest.param(
            deployment,
            "read_namespaced_deployment_scale",
            "replace_namespaced_deployment_scale",
            id="deployment",
        ),
        pytest.param(
            statefulset,
            "read_namespaced_stateful_set_scale",
            "replace_namespaced_stateful_set_scale",
            id="statefulset",
        ),
    ],
)
def test_scale_subresource_maps_to_spec_replicas(
    kube_server: KubeServer, api: Any, builder: Any, read: str, replace: str
) -> None:
    obj = kube_server.put_object(builder("w", replicas=3, ready=2))
    apps = client.AppsV1Api(api)
    scale = getattr(apps, read)("w", "default")
    assert (scale.spec.replicas, scale.status.replicas) == (3, 3)
    scale.spec.replicas = 8
    out = getattr(apps, replace)("w", "default", scale)
    assert out.spec.replicas == 8
    stored = kube_server.get_object("apps/v1", obj["kind"], "w")
    assert stored is not None
    assert stored["spec"]["replicas"] == 8
    assert stored["metadata"]["generation"] == 2
    with pytest.raises(client.ApiException) as err:
        getattr(apps, replace)("w", "default", scale)  # stale resourceVersion
    assert err.value.status == 409


def test_negative_scale_is_invalid(kube_server: KubeServer, api: Any) -> None:
    kube_server.put_object(deployment("web"))
    with pytest.raises(client.ApiException) as err:
        client.AppsV1Api(api).patch_namespaced_deployment_scale(
            "web", "default", {"spec": {"replicas": -1}}
        )
    assert err.value.status == 422


# -- watch -------------------------------------------------------------------------------------


def test_watch_from_resource_version_sees_changes(kube_server: KubeServer, api: Any) -> None:
    kube_server.put_object(deployment("web"))
    apps = client.AppsV1Api(api)
    rv = apps.list_namespaced_deployment("default").metadata.resource_version

    def mutate() -> None:
        kube_server.put_object(deployment("api"))
        kube_server.put_object(deployment("web", replicas=4))
        kube_server.delete_object("apps/v1", "Deployment", "api")

    timer = threading.Timer(0.1, mutate)
    timer.start()
    seen = []
    w = watch.Watch()
    for ev in w.stream(
        apps.list_namespaced_deployment, "default", resource_version=rv, timeout_seconds=5
    ):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 3:
            w.stop()
    timer.join()
    assert seen == [("ADDED", "api"), ("MODIFIED", "web"), ("DELETED", "api")]


def test_watch_without_resource_version_starts_with_current_objects(
    kube_server: KubeServer, api: Any
) -> None:
    kube_server.put_object(deployment("a"))
    kube_server.put_object(deployment("b", namespace="other"))
    events = list(
        watch.Watch().stream(
            client.AppsV1Api(api).list_deployment_for_all_namespaces, timeout_seconds=1
        )
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
    ]


def test_watch_bookmarks_and_server_timeout(kube_server: KubeServer, api: Any) -> None:
    rv = client.CoreV1Api(api).list_namespaced_event("default").metadata.resource_version
    events = list(
        watch.Watch().stream(
            client.CoreV1Api(api).list_namespaced_event,
            "default",
            resource_version=rv,
            allow_watch_bookmarks=True,
            timeout_seconds=1,
        )
    )
    assert events and all(e["type"] == "BOOKMARK" for e in events)
    assert events[-1]["raw_object"]["metadata"]["resourceVersion"] == rv


def test_watch_after_compaction_is_410_gone(kube_server: KubeServer, api: Any) -> None:
    kube_server.put_object(deployment("web"))
    apps = client.AppsV1Api(api)
    rv = apps.list_namespaced_deployment("default").metadata.resource_version
    kube_server.put_object(deployment("web", replicas=2))
    kube_server.compact()
    raw = apps.list_namespaced_deployment(
        "default", watch=True, resource_version=rv, _preload_content=False
    )
    line = json.loads(raw.data.splitlines()[0])
    assert line["type"] == "ERROR"
    assert line["object"]["code"] == 410
    with pytest.raises(client.ApiException) as err:
        list(
            watch.Watch().stream(
                apps.list_namespaced_deployment, "default", resource_version=rv, timeout_seconds=1
            )
        )
    assert err.value.status == 410


def test_dropped_watch_breaks_the_stream(kube_server: KubeServer, api: Any) -> None:
    apps = client.AppsV1Api(api)
    timer = threading.Timer(0.2, kube_server.drop_watches)
    timer.start()
    with pytest.raises(urllib3.exceptions.HTTPError):
        list(watch.Watch().stream(apps.list_namespaced_deployment, "default", timeout_seconds=5))
    timer.join()


# -- leases and events ----------------------------------------------------------------------------


def test_lease_create_get_update_with_concurrency(kube_server: KubeServer, api: Any) -> None:
    coord = client.CoordinationV1Api(api)
    lease = {
        "metadata": {"name": "gemini"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }
    coord.create_namespaced_lease("default", lease)
    with pytest.raises(client.ApiException) as err:
        coord.create_namespaced_lease("default", lease)
    assert err.value.status == 409 and _status(err.value)["reason"] == "Conflict"
    mine = coord.read_namespaced_lease("gemini", "default")
    theirs = coord.read_namespaced_lease("gemini", "default")
    theirs.spec.holder_identity = "b"
    coord.replace_namespaced_lease("gemini", "default", theirs)
    mine.spec.holder_identity = "a2"
    with pytest.raises(client.ApiException) as err:
        coord.replace_namespaced_lease("gemini", "default", mine)
    assert err.value.status == 409
    assert coord.read_namespaced_lease("gemini", "default").spec.holder_identity == "b"


def test_events_create_and_list(kube_server: KubeServer, api: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_event(
        "default",
        {
            "metadata": {"generateName": "web."},
            "involvedObject": {"kind": "Deployment", "name": "web", "namespace": "default"},
            "reason": "Scaled",
            "message": "3 -> 5",
            "type": "Normal",
        },
    )
    client.EventsV1Api(api).create_namespaced_event(
        "default",
        {
            "metadata": {"name": "e2"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reason": "X",
            "action": "Scale",
            "reportingController": "gemini",
            "reportingInstance": "g-1",
            "type": "Normal",
        },
    )
    listed = core.list_namespaced_event("default").items
    assert [e.reason for e in listed] == ["Scaled"]
    assert listed[0].metadata.name.startswith("web.")
    assert len(client.EventsV1Api(api).list_namespaced_event("default").items) == 1


# -- RBAC, faults, log -------------------------------------------------------------------------------


def test_denied_verb_is_403_with_the_real_message(kube_server: KubeServer, api: Any) -> None:
    kube_server.put_object(deployment("web"))
    kube_server.deny("update", "deployments/scale", namespace="default")
    apps = client.AppsV1Api(api)
    scale = apps.read_namespaced_deployment_scale("web", "default")  # get still allowed
    with pytest.raises(client.ApiException) as err:
        apps.replace_namespaced_deployment_scale("web", "default", scale)
    assert err.value.status == 403
    assert _status(err.value)["message"] == (
        'deployments.apps "web" is forbidden: User "system:serviceaccount:gemini-system:gemini" '
        'cannot update resource "deployments/scale" in API group "apps" in the namespace "default"'
    )
    kube_server.allow_all()
    assert apps.replace_namespaced_deployment_scale("web", "default", scale).spec.replicas == 1


def test_fail_next_then_success_and_request_log(kube_server: KubeServer, api: Any) -> None:
    kube_server.put_object(deployment("web"))
    path = "/apis/apps/v1/namespaces/default/deployments/web/scale"
    kube_server.fail_next(path, 503, count=2, method="GET")
    apps = client.AppsV1Api(api)
    for _ in range(2):
        with pytest.raises(client.ApiException) as err:
            apps.read_namespaced_deployment_scale("web", "default")
        assert err.value.status == 503
    assert apps.read_namespaced_deployment_scale("web", "default").spec.replicas == 1
    log = kube_server.requests("GET", path)
    assert [(r.status, r.verb, r.resource) for r in log] == [
        (503, "get", "deployments/scale"),
        (503, "get", "deployments/scale"),
        (200, "get", "deployments/scale"),
    ]


def test_hpa_and_keda_lists(kube_server: KubeServer, api: Any) -> None:
    kube_server.install_keda()
    kube_server.put_object(hpa("h", "Deployment", "web"))
    kube_server.put_object(scaled_object("so", "web"))
    hpas = client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler("default")
    assert hpas.items[0].spec.scale_target_ref.name == "web"
    sos = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "keda.sh", "v1alpha1", "default", "scaledobjects"
    )
    assert sos["items"][0]["spec"]["scaleTargetRef"]["name"] == "web"


def test_kubeconfig_file_points_at_the_server(kube_server: KubeServer, tmp_path: Path) -> None:
    path = kube_server.write_kubeconfig(tmp_path / "kubeconfig")
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    with client.ApiClient(cfg) as api_client:
        names = [n.metadata.name for n in client.CoreV1Api(api_client).list_namespace().items]
    assert names == ["default", "kube-system"]


def test_stop_cuts_keep_alive_connections(kube_server: KubeServer, api: Any) -> None:
    core = client.CoreV1Api(api)
    assert core.list_namespace().items  # opens a pooled keep-alive connection
    kube_server.stop()
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.list_namespace(_request_timeout=2)


def test_the_generated_scalingpolicy_crd_is_served(kube_server: KubeServer, api: Any) -> None:
    import yaml

    crd_path = Path(__file__).resolve().parents[2] / "deploy" / "crd.yaml"
    kube_server.register_crd(yaml.safe_load(crd_path.read_text()))
    co = client.CustomObjectsApi(api)
    args = ("autoscaling.gemini.dev", "v1alpha1", "default", "scalingpolicies")
    created = co.create_namespaced_custom_object(
        *args,
        {
            "apiVersion": "autoscaling.gemini.dev/v1alpha1",
            "kind": "ScalingPolicy",
            "metadata": {"name": "p"},
            "spec": {"minReplicas": 1},
        },
    )
    out = co.patch_namespaced_custom_object_status(
        *args, "p", {"status": {"observedGeneration": 1, "desiredReplicas": 3}}
    )
    assert out["status"]["desiredReplicas"] == 3
    assert out["metadata"]["generation"] == 1
    spec = co.patch_namespaced_custom_object(*args, "p", {"spec": {"minReplicas": 2}})
    assert spec["metadata"]["generation"] == 2
    assert spec["status"]["desiredReplicas"] == 3  # the main resource keeps status
    stale = dict(created, status={"desiredReplicas": 9})
    with pytest.raises(client.ApiException) as err:
        co.replace_namespaced_custom_object_status(*args, "p", stale)
    assert err.value.status == 409


def test_bearer_token_is_enforced_when_set(tmp_path: Path) -> None:
    with KubeServer(token="s3cret") as server:
        with server.api_client() as anonymous, pytest.raises(client.ApiException) as err:
            client.CoreV1Api(anonymous).list_namespace()
        assert err.value.status == 401
        cfg = client.Configuration()
        config.load_kube_config(
            config_file=str(server.write_kubeconfig(tmp_path / "kc")), client_configuration=cfg
        )
        with client.ApiClient(cfg) as authed:
            assert client.CoreV1Api(authed).list_namespace().items


@pytest.mark.parametrize(
    "patch",
    [
        pytest.param({"spec": {"replicas": 2}}, id="same-spec"),
        pytest.param({"metadata": {"labels": {"app": "web"}}}, id="same-labels"),
    ],
)
def test_noop_patch_keeps_the_stored_resource_version(
    kube_server: KubeServer, api: Any, patch: dict[str, Any]
) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    apps = client.AppsV1Api(api)
    before = apps.read_namespaced_deployment("web", "default").metadata.resource_version
    out = apps.patch_namespaced_deployment("web", "default", patch)
    assert out.metadata.resource_version == before
    cur = apps.read_namespaced_deployment("web", "default")
    assert cur.metadata.resource_version == before
    cur.spec.replicas = 3
    assert apps.replace_namespaced_deployment("web", "default", cur).spec.replicas == 3


def test_many_concurrent_clients(kube_server: KubeServer) -> None:
    """A worker pool's worth of clients at once: every write lands exactly once, in order."""
    from concurrent.futures import ThreadPoolExecutor

    for i in range(16):
        kube_server.put_object(deployment(f"d{i}", replicas=0))
    api_client = kube_server.api_client()
    apps = client.AppsV1Api(api_client)

    def bump(i: int) -> int:
        for _ in range(10):
            scale = apps.read_namespaced_deployment_scale(f"d{i}", "default")
            scale.spec.replicas += 1
            apps.replace_namespaced_deployment_scale(f"d{i}", "default", scale)
        return int(apps.read_namespaced_deployment_scale(f"d{i}", "default").spec.replicas)

    with ThreadPoolExecutor(16) as pool:
        assert list(pool.map(bump, range(16))) == [10] * 16
    api_client.close()
    assert kube_server.resource_version >= 16 * 10


def test_custom_scale_without_label_selector_path(kube_server: KubeServer, api: Any) -> None:
    kube_server.register_crd(crd("example.com", "gadgets", "Gadget", scale=ScalePaths()))
    kube_server.put_object(
        {
            "apiVersion": "example.com/v1alpha1",
            "kind": "Gadget",
            "metadata": {"name": "g"},
            "spec": {"replicas": 2, "selector": "app=g"},  # a string, not a LabelSelector
        }
    )
    scale = client.CustomObjectsApi(api).get_namespaced_custom_object_scale(
        "example.com", "v1alpha1", "default", "gadgets", "g"
    )
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 0}
