"""`KubernetesScaler` with the real `kubernetes` client against the local API server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gemini.errors import ScaleError, ScaleRefused, TargetNotFound
from gemini.policy.spec import Target
from gemini.scalers import ApplyStatus, TargetRef
from gemini.scalers.kubernetes import KubernetesScaler
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

__all__ = ["kube_server"]

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SCALE_PATH = "/apis/apps/v1/namespaces/default/deployments/web/scale"


def ref(
    name: str = "web", kind: str = "Deployment", api_version: str = "apps/v1", ns: str = "default"
) -> TargetRef:
    target = Target.model_validate(
        {"kubernetes": {"apiVersion": api_version, "kind": kind, "name": name}}
    )
    return TargetRef(f"{ns}/policy", ns, target)


@pytest.fixture
def scaler(kube_server: KubeServer) -> Iterator[KubernetesScaler]:
    s = KubernetesScaler(kube_server.api_client())
    yield s
    s.close()


def _install_widgets(server: KubeServer) -> None:
    server.register_crd(
        crd(
            "example.com",
            "widgets",
            "Widget",
            scale=ScalePaths(".spec.size", ".status.size", ".status.selector"),
        )
    )
    server.put_object(
        {
            "apiVersion": "example.com/v1alpha1",
            "kind": "Widget",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"size": 2},
            "status": {"size": 2, "selector": "app=web"},
        }
    )


def _spec_replicas(server: KubeServer, kind: str, api_version: str = "apps/v1") -> int:
    obj = server.get_object(api_version, kind, "web")
    assert obj is not None
    spec = obj["spec"]
    return int(spec.get("replicas", spec.get("size")))


# -- reads and writes for every kind ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "api_version", "setup"),
    [
        pytest.param(
            "Deployment",
            "apps/v1",
            lambda s: s.put_object(deployment("web", replicas=2)),
            id="deployment",
        ),
        pytest.param(
            "StatefulSet",
            "apps/v1",
            lambda s: s.put_object(statefulset("web", replicas=2)),
            id="statefulset",
        ),
        pytest.param("Widget", "example.com/v1alpha1", _install_widgets, id="custom-resource"),
    ],
)
def test_reads_and_writes_scale_of_any_kind(
    kube_server: KubeServer, scaler: KubernetesScaler, kind: str, api_version: str, setup: Any
) -> None:
    setup(kube_server)
    target = ref(kind=kind, api_version=api_version)
    cap = scaler.capacity(target, NOW)
    assert (cap.current, cap.ready, cap.blocked) == (2, 2, None)
    result = scaler.apply(target, 5, NOW)
    assert (result.status, result.replicas, result.reason) == (ApplyStatus.APPLIED, 5, "Scaled")
    assert _spec_replicas(kube_server, kind, api_version) == 5
    again = scaler.apply(target, 5, NOW)
    assert (again.status, again.replicas) == (ApplyStatus.UNCHANGED, 5)
    assert scaler.capacity(target, NOW).current == 5
    puts = kube_server.requests("PUT")
    assert len(puts) == 1 and puts[0].resource.endswith("/scale")


def _replicaset(s: KubeServer) -> None:
    s.put_object({**deployment("web", replicas=2), "kind": "ReplicaSet"})


@pytest.mark.parametrize(
    ("kind", "api_version", "plural", "setup", "reads"),
    [
        pytest.param(
            "Deployment",
            "apps/v1",
            "deployments",
            lambda s: s.put_object(deployment("web", replicas=2)),
            ["web"],
            id="deployment-one-get",
        ),
        pytest.param(
            "StatefulSet",
            "apps/v1",
            "statefulsets",
            lambda s: s.put_object(statefulset("web", replicas=2)),
            ["web"],
            id="statefulset-one-get",
        ),
        pytest.param(
            "ReplicaSet", "apps/v1", "replicasets", _replicaset, ["web"], id="replicaset-one-get"
        ),
        pytest.param(
            "Widget",
            "example.com/v1alpha1",
            "widgets",
            _install_widgets,
            ["web/scale", "web"],
            id="custom-resource-scale-then-object",
        ),
    ],
)
def test_capacity_reads_built_in_workloads_with_one_get(
    kube_server: KubeServer,
    scaler: KubernetesScaler,
    kind: str,
    api_version: str,
    plural: str,
    setup: Any,
    reads: list[str],
) -> None:
    setup(kube_server)
    target = ref(kind=kind, api_version=api_version)
    base = f"/apis/{api_version}/namespaces/default/{plural}/"
    cap = scaler.capacity(target, NOW)
    assert [r.path.removeprefix(base) for r in kube_server.requests("GET", base)] == reads
    scale = kube_server.api_client().call_api(
        "GET", kube_server.url + base + "web/scale", {"Accept": "application/json"}
    )
    scale.read()
    view = json.loads(scale.data)
    # Read from the object or from /scale, the capacity is the same, and so is the
    # resourceVersion the write path's optimistic concurrency relies on.
    assert (cap.current, cap.detail["statusReplicas"], cap.detail["resourceVersion"]) == (
        view["spec"]["replicas"],
        view["status"]["replicas"],
        view["metadata"]["resourceVersion"],
    )
    assert scaler.apply(target, 3, NOW).status is ApplyStatus.APPLIED


def test_discovery_is_cached(kube_server: KubeServer, scaler: KubernetesScaler) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    for _ in range(3):
        scaler.capacity(ref(), NOW)
    assert (
        len(kube_server.requests("GET", "/apis/apps/v1"))
        - len(kube_server.requests("GET", "/apis/apps/v1/"))
        == 1
    )


def test_ready_replicas_come_from_the_workload_status(
    kube_server: KubeServer, scaler: KubernetesScaler
) -> None:
    kube_server.put_object(deployment("web", replicas=4, ready=1))
    cap = scaler.capacity(ref(), NOW)
    assert (cap.current, cap.ready) == (4, 1)
    assert cap.detail["statusReplicas"] == 4


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "ReplicaSet"])
def test_no_ready_replicas_field_means_none_ready(
    kube_server: KubeServer, scaler: KubernetesScaler, kind: str
) -> None:
    # The API server leaves out `readyReplicas: 0` (omitempty) for every apps workload.
    obj = {**deployment("web", replicas=3, ready=0), "kind": kind}
    del obj["status"]["readyReplicas"]
    kube_server.put_object(obj)
    cap = scaler.capacity(ref(kind=kind), NOW)
    assert (cap.current, cap.ready) == (3, 0)


def test_ready_falls_back_to_scale_status_without_workload_read(
    kube_server: KubeServer, scaler: KubernetesScaler
) -> None:
    kube_server.put_object(deployment("web", replicas=4, ready=1))
    kube_server.set_status("apps/v1", "Deployment", "web", replicas=3)
    kube_server.deny("get", "deployments")  # RBAC grants only deployments/scale
    cap = scaler.capacity(ref(), NOW)
    assert (cap.current, cap.ready) == (4, 3)
    assert "rolloutInProgress" not in cap.detail


@pytest.mark.parametrize(
    ("status", "in_progress", "why"),
    [
        pytest.param({}, False, "", id="settled"),
        pytest.param(
            {"observedGeneration": 0},
            True,
            "observedGeneration 0 < generation 1",
            id="generation-not-observed",
        ),
        pytest.param(
            {"updatedReplicas": 1}, True, "updatedReplicas 1 < replicas 3", id="pods-not-updated"
        ),
    ],
)
def test_rollout_in_progress(
    kube_server: KubeServer,
    scaler: KubernetesScaler,
    status: dict[str, Any],
    in_progress: bool,
    why: str,
) -> None:
    kube_server.put_object(deployment("web", replicas=3))
    if status:
        kube_server.set_status("apps/v1", "Deployment", "web", **status)
    cap = scaler.capacity(ref(), NOW)
    assert cap.detail["rolloutInProgress"] is in_progress
    assert cap.detail.get("rollout", "") == why
    assert cap.reasons == (("RolloutInProgress",) if in_progress else ())


def test_scale_write_bumps_generation_and_shows_a_rollout(
    kube_server: KubeServer, scaler: KubernetesScaler
) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    scaler.apply(ref(), 6, NOW)
    cap = scaler.capacity(ref(), NOW)
    assert cap.detail["rolloutInProgress"] is True
    kube_server.settle("apps/v1", "Deployment", "web")
    cap = scaler.capacity(ref(), NOW)
    assert (cap.current, cap.ready, cap.detail["rolloutInProgress"]) == (6, 6, False)


# -- concurrency ---------------------------------------------------------------------------------


def test_conflict_then_success_re_reads_and_retries(
    kube_server: KubeServer, scaler: KubernetesScaler
) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    kube_server.fail_next(SCALE_PATH, 409, method="PUT")
    result = scaler.apply(ref(), 4, NOW)
    assert (result.status, result.replicas) == (ApplyStatus.APPLIED, 4)
    assert [r.status for r in kube_server.requests("PUT", SCALE_PATH)] == [409, 200]
    assert len(kube_server.requests("GET", SCALE_PATH)) == 2  # read, re-read after the 409


def test_conflict_forever_gives_conflict_without_overwriting(
    kube_server: KubeServer, scaler: KubernetesScaler
) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    kube_server.fail_next(SCALE_PATH, 409, method="PUT", count=100)
    result = scaler.apply(ref(), 4, NOW)
    assert (result.status, result.reason, result.replicas) == (
        ApplyStatus.CONFLICT,
        "ScaleConflict",
        2,
    )
    assert len(kube_server.requests("PUT", SCALE_PATH)) == scaler.max_attempts
    assert _spec_replicas(kube_server, "Deployment") == 2


def test_a_real_concurrent_writer_is_never_overwritten_blindly(kube_server: KubeServer) -> None:
    """Another writer changes spec.replicas between our read and write: the PUT carries the
    old resourceVersion, gets a real 409, and the retry starts from the new value."""
    kube_server.put_object(deployment("web", replicas=2))
    scaler = KubernetesScaler(kube_server.api_client())
    fired = threading.Event()

    def other_writer(method: str, path: str) -> None:
        if method == "PUT" and not fired.is_set():
            fired.set()
            kube_server.put_object(deployment("web", replicas=7))  # someone else scales first

    remove = kube_server.on_request(other_writer)
    try:
        result = scaler.apply(ref(), 7, NOW)
    finally:
        remove()
        scaler.close()
    assert (result.status, result.replicas) == (ApplyStatus.UNCHANGED, 7)
    assert [r.status for r in kube_server.requests("PUT", SCALE_PATH)] == [409]


@pytest.mark.parametrize(
    ("kind", "api_version", "setup", "scale_path"),
    [
        pytest.param(
            "Deployment",
            "apps/v1",
            lambda s: s.put_object(deployment("web", replicas=2)),
            SCALE_PATH,
            id="deployment",
        ),
        pytest.param(
            "Widget",
            "example.com/v1alpha1",
            _install_widgets,
            "/apis/example.com/v1alpha1/namespaces/default/widgets/web/scale",
            id="custom-resource",
        ),
    ],
)
def test_apply_after_capacity_at_the_same_instant_writes_with_that_read(
    kube_server: KubeServer,
    scaler: KubernetesScaler,
    kind: str,
    api_version: str,
    setup: Any,
    scale_path: str,
) -> None:
    setup(kube_server)
    target = ref(kind=kind, api_version=api_version)
    scaler.capacity(target, NOW)
    gets_before = len(kube_server.requests("GET", scale_path))
    result = scaler.apply(target, 4, NOW)
    assert (result.status, result.replicas) == (ApplyStatus.APPLIED, 4)
    assert len(kube_server.requests("GET", scale_path)) == gets_before  # no second read
    assert [r.status for r in kube_server.requests("PUT", scale_path)] == [200]
    # The read is used once: a later apply at the same instant reads afresh.
    assert scaler.apply(target, 5, NOW).status is ApplyStatus.APPLIED
    assert len(kube_server.requests("GET", scale_path)) == gets_before + 1
    # Another instant never uses it either.
    scaler.capacity(target, NOW)
    gets_before = len(kube_server.requests("GET", scale_path))
    scaler.apply(target, 6, NOW + timedelta(seconds=15))
    assert len(kube_server.requests("GET", scale_path)) == gets_before + 1


def test_a_change_between_capacity_and_apply_is_a_real_409_then_a_re_read(
    kube_server: KubeServer, scaler: KubernetesScaler
) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    assert scaler.capacity(ref(), NOW).current == 2
    kube_server.put_object(deployment("web", replicas=3))  # someone else scales in between
    result = scaler.apply(ref(), 5, NOW)
    assert (result.status, result.replicas) == (ApplyStatus.APPLIED, 5)
    assert [r.status for r in kube_server.requests("PUT", SCALE_PATH)] == [409, 200]
    assert len(kube_server.requests("GET", SCALE_PATH)) == 1  # the re-read after the 409
    assert scaler.stale_reads == 1


def test_a_stale_batch_read_does_not_count_as_a_conflicting_writer(
    kube_server: KubeServer,
) -> None:
    """With max_attempts=1 a real conflict gives up at once; a 409 on the batch's (older) read
    is only a re-read, not a lost attempt."""
    scaler = KubernetesScaler(kube_server.api_client(), max_attempts=1)
    try:
        kube_server.put_object(deployment("web", replicas=2))
        scaler.capacity(ref(), NOW)
        kube_server.put_object(deployment("web", replicas=2, ready=1))  # a status update
        result = scaler.apply(ref(), 5, NOW)
        assert (result.status, result.replicas) == (ApplyStatus.APPLIED, 5)
        # A conflict on a fresh read still counts.
        kube_server.fail_next(SCALE_PATH, 409, method="PUT")
        assert scaler.apply(ref(), 6, NOW).status is ApplyStatus.CONFLICT
    finally:
        scaler.close()


# -- missing, forbidden -------------------------------------------------------------------------


def test_missing_target(kube_server: KubeServer, scaler: KubernetesScaler) -> None:
    with pytest.raises(TargetNotFound, match="Deployment default/web not found"):
        scaler.capacity(ref(), NOW)
    result = scaler.apply(ref(), 3, NOW)
    assert (result.status, result.reason) == (ApplyStatus.FAILED, "TargetNotFound")


def test_unknown_kind_and_kind_without_scale(
    kube_server: KubeServer, scaler: KubernetesScaler
) -> None:
    with pytest.raises(TargetNotFound, match="serves no kind 'Gizmo'"):
        scaler.capacity(ref(kind="Gizmo"), NOW)
    with pytest.raises(TargetNotFound, match=r"does not serve example\.com/v1"):
        scaler.capacity(ref(kind="Gizmo", api_version="example.com/v1"), NOW)
    kube_server.put_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}})
    with pytest.raises(ScaleRefused, match="configmaps has no /scale") as err:
        scaler.capacity(ref(kind="ConfigMap", api_version="v1"), NOW)
    assert err.value.reason == "NoScaleSubresource"


def test_a_scale_subresource_added_later_is_noticed(
    kube_server: KubeServer, scaler: KubernetesScaler
) -> None:
    # `kubectl apply` of the CRD without /scale first, then with it (the fix the error asks for):
    # the scaler must not keep refusing until it is restarted.
    kube_server.register_crd(crd("example.com", "widgets", "Widget", scale=None))
    _install_widgets(kube_server)  # the same CRD, now with a scale subresource, and a Widget
    kube_server.register_crd(crd("example.com", "widgets", "Widget", scale=None))
    widget = ref(kind="Widget", api_version="example.com/v1alpha1")
    with pytest.raises(ScaleRefused, match="has no /scale") as err:
        scaler.capacity(widget, NOW)
    assert err.value.reason == "NoScaleSubresource"
    _install_widgets(kube_server)
    assert scaler.capacity(widget, NOW).current == 2
    assert scaler.apply(widget, 3, NOW).status is ApplyStatus.APPLIED


def test_target_deleted_between_read_and_write(
    kube_server: KubeServer, scaler: KubernetesScaler
) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    assert scaler.capacity(ref(), NOW).current == 2
    kube_server.delete_object("apps/v1", "Deployment", "web")
    result = scaler.apply(ref(), 3, NOW)
    assert (result.status, result.reason) == (ApplyStatus.FAILED, "TargetNotFound")


@pytest.mark.parametrize(
    ("verb", "expected"),
    [
        pytest.param(
            "get",
            "cannot get deployments/scale in namespace default: grant get on apps deployments/scale",
            id="read",
        ),
        pytest.param(
            "update",
            "cannot update deployments/scale in namespace default: grant update on apps "
            "deployments/scale",
            id="write",
        ),
    ],
)
def test_forbidden_names_verb_and_resource(
    kube_server: KubeServer, scaler: KubernetesScaler, verb: str, expected: str
) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    kube_server.deny(verb, "deployments/scale")
    result = scaler.apply(ref(), 3, NOW)
    assert (result.status, result.reason) == (ApplyStatus.REFUSED, "Forbidden")
    assert result.message.startswith(expected)
    assert 'User "system:serviceaccount:gemini-system:gemini"' in result.message
    if verb == "get":
        # A Deployment's capacity is read from the object itself (one GET); the missing grant
        # shows on the write path above. A kind read through /scale reports it on reading.
        assert scaler.capacity(ref(), NOW).current == 2
        _install_widgets(kube_server)
        kube_server.deny("get", "widgets/scale")
        with pytest.raises(ScaleRefused) as err:
            scaler.capacity(ref(kind="Widget", api_version="example.com/v1alpha1"), NOW)
        assert err.value.reason == "Forbidden"
        assert str(err.value).startswith("cannot get widgets/scale in namespace default")


def test_conflict_check_needs_list_on_hpas(
    kube_server: KubeServer, scaler: KubernetesScaler
) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    kube_server.deny("list", "horizontalpodautoscalers")
    with pytest.raises(ScaleRefused, match="grant list on autoscaling horizontalpodautoscalers"):
        scaler.capacity(ref(), NOW)


def test_server_error_is_a_scale_error(kube_server: KubeServer, scaler: KubernetesScaler) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    kube_server.fail_next(SCALE_PATH.removesuffix("/scale"), 503, method="GET")  # capacity: 1 GET
    with pytest.raises(ScaleError) as err:
        scaler.capacity(ref(), NOW)
    assert err.value.reason == "TargetReadFailed"
    assert "get deployments failed" in str(err.value)
    kube_server.fail_next(SCALE_PATH, 500, method="PUT")
    result = scaler.apply(ref(), 3, NOW)
    assert (result.status, result.reason, result.replicas) == (
        ApplyStatus.FAILED,
        "KubernetesError",
        2,
    )


def test_failed_keda_discovery_is_a_scale_error_not_an_exception(
    kube_server: KubeServer, scaler: KubernetesScaler
) -> None:
    # Whether KEDA is installed cannot be told: do not act, and say why in a short message.
    kube_server.put_object(deployment("web", replicas=2))
    kube_server.fail_next("/apis/keda.sh/v1alpha1", 503, method="GET", count=2)
    with pytest.raises(ScaleError) as err:
        scaler.capacity(ref(), NOW)
    assert err.value.reason == "TargetReadFailed"
    assert "keda.sh/v1alpha1" in str(err.value) and "HTTP response headers" not in str(err.value)
    result = scaler.apply(ref(), 3, NOW)
    assert (result.status, result.reason) == (ApplyStatus.FAILED, "TargetReadFailed")
    assert _spec_replicas(kube_server, "Deployment") == 2


# -- HPA and KEDA conflicts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keda", "objects", "conflict"),
    [
        pytest.param(
            False,
            [hpa("web-hpa", "Deployment", "web")],
            "HorizontalPodAutoscaler default/web-hpa",
            id="hpa",
        ),
        pytest.param(
            True,
            [scaled_object("web-so", "web")],
            "KEDA ScaledObject default/web-so",
            id="keda-default-kind",
        ),
        pytest.param(
            True,
            [scaled_object("web-so", "web", target_kind="Deployment")],
            "KEDA ScaledObject default/web-so",
            id="keda-explicit-kind",
        ),
        pytest.param(False, [hpa("other", "Deployment", "api")], None, id="hpa-for-another-target"),
        pytest.param(False, [hpa("sts", "StatefulSet", "web")], None, id="hpa-for-another-kind"),
        pytest.param(
            True,
            [scaled_object("so", "web", target_kind="StatefulSet")],
            None,
            id="keda-other-kind",
        ),
        pytest.param(
            False,
            [hpa("h", "Deployment", "web", namespace="other")],
            None,
            id="hpa-other-namespace",
        ),
        pytest.param(False, [], None, id="no-keda-crd"),
    ],
)
def test_hpa_and_keda_conflicts_block(
    kube_server: KubeServer,
    scaler: KubernetesScaler,
    keda: bool,
    objects: list[dict[str, Any]],
    conflict: str | None,
) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    if keda:
        kube_server.install_keda()
    for obj in objects:
        kube_server.put_object(obj)
    cap = scaler.capacity(ref(), NOW)
    result = scaler.apply(ref(), 4, NOW)
    if conflict is None:
        assert cap.blocked is None
        assert result.status is ApplyStatus.APPLIED
        return
    assert cap.blocked == "TargetConflict"
    assert conflict in cap.detail["conflict"]
    assert (result.status, result.reason, result.replicas) == (
        ApplyStatus.REFUSED,
        "TargetConflict",
        2,
    )
    assert conflict in result.message
    assert _spec_replicas(kube_server, "Deployment") == 2


def test_conflict_checks_can_be_turned_off(kube_server: KubeServer) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    kube_server.put_object(hpa("web-hpa", "Deployment", "web"))
    scaler = KubernetesScaler(kube_server.api_client(), check_conflicts=False)
    try:
        assert scaler.capacity(ref(), NOW).blocked is None
        assert scaler.apply(ref(), 3, NOW).status is ApplyStatus.APPLIED
    finally:
        scaler.close()


def test_negative_desired_is_rejected_without_a_request(
    kube_server: KubeServer, scaler: KubernetesScaler
) -> None:
    result = scaler.apply(ref(), -1, NOW)
    assert (result.status, result.reason) == (ApplyStatus.FAILED, "InvalidReplicas")
    assert kube_server.requests("PUT") == []


def test_conflict_lists_are_reused_within_the_ttl(kube_server: KubeServer) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    scaler = KubernetesScaler(kube_server.api_client(), conflict_ttl_seconds=10)
    hpa_path = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"
    try:
        assert scaler.capacity(ref(), NOW).blocked is None
        kube_server.put_object(hpa("late", "Deployment", "web"))
        assert scaler.capacity(ref(), NOW + timedelta(seconds=9)).blocked is None
        assert len(kube_server.requests("GET", hpa_path)) == 1
        later = NOW + timedelta(seconds=10)
        assert scaler.capacity(ref(), later).blocked == "TargetConflict"
        assert len(kube_server.requests("GET", hpa_path)) == 2
    finally:
        scaler.close()


def test_keda_installed_later_is_noticed_after_the_recheck_interval(
    kube_server: KubeServer, scaler: KubernetesScaler
) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    assert scaler.capacity(ref(), NOW).blocked is None
    kube_server.install_keda()
    kube_server.put_object(scaled_object("so", "web"))
    assert scaler.capacity(ref(), NOW + timedelta(seconds=30)).blocked is None
    assert scaler.capacity(ref(), NOW + timedelta(seconds=60)).blocked == "TargetConflict"


# -- the whole tick: source -> decide -> scaler -------------------------------------------------


def _policy(behavior: dict[str, Any] | None = None) -> Any:
    from gemini.policy.spec import ScalingPolicy

    return ScalingPolicy.model_validate(
        {
            "apiVersion": "autoscaling.gemini.dev/v1alpha1",
            "kind": "ScalingPolicy",
            "metadata": {"name": "workers", "namespace": "default"},
            "spec": {
                "target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                "minReplicas": 1,
                "maxReplicas": 20,
                "metrics": [
                    {
                        "name": "frontends",
                        "source": {"kubernetes": {"name": "frontend", "replicas": "Desired"}},
                        "target": {"type": "AverageValue", "averageValue": 2},
                    }
                ],
            },
        }
    )


@pytest.mark.parametrize("owned_by_hpa", [False, True], ids=["free", "hpa-owned"])
def test_tick_scales_a_deployment_from_another_workloads_replicas(
    kube_server: KubeServer, owned_by_hpa: bool
) -> None:
    from gemini import loop
    from gemini.metrics import RoutingReader
    from gemini.metrics.kubernetes import KubernetesSource
    from gemini.policy.state import PolicyState

    kube_server.put_object(deployment("web", replicas=2))
    kube_server.put_object(deployment("frontend", replicas=10))
    if owned_by_hpa:
        kube_server.put_object(hpa("web-hpa", "Deployment", "web"))
    scaler = KubernetesScaler(kube_server.api_client())
    reader = RoutingReader({"kubernetes": KubernetesSource(kube_server.api_client())})
    try:
        result = loop.tick(_policy(), PolicyState(), reader=reader, scaler=scaler, now=NOW)
    finally:
        reader.close()
        scaler.close()
    assert result.decision is not None
    if owned_by_hpa:
        assert result.decision.applied is False
        assert "TargetConflict" in result.decision.reasons
        assert kube_server.requests("PUT") == []
        assert _spec_replicas(kube_server, "Deployment") == 2
    else:
        assert result.decision.applied is True
        assert result.decision.desired == 5  # 10 frontends / 2 per replica
        assert _spec_replicas(kube_server, "Deployment") == 5


# -- invariant: never a blind overwrite ------------------------------------------------------------


def test_interfering_writers_never_get_overwritten_blindly() -> None:
    """Whatever other writers do between our read and our write, `apply` either lands the
    desired value on the version it read, or gives up with CONFLICT leaving their value."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    server = KubeServer().start()
    scaler = KubernetesScaler(server.api_client(), check_conflicts=False, max_attempts=3)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        start=st.integers(0, 20),
        desired=st.integers(0, 20),
        others=st.lists(st.integers(0, 20), max_size=5),
    )
    def check(start: int, desired: int, others: list[int]) -> None:
        server.put_object(deployment("web", replicas=start))
        pending = list(others)

        def interfere(method: str, path: str) -> None:
            if method == "PUT" and pending:
                server.put_object(deployment("web", replicas=pending.pop(0)))

        remove = server.on_request(interfere)
        try:
            result = scaler.apply(ref(), desired, NOW)
        finally:
            remove()
        final = _spec_replicas(server, "Deployment")
        if result.status is ApplyStatus.APPLIED:
            assert final == desired == result.replicas
        elif result.status is ApplyStatus.UNCHANGED:
            assert final == desired
        else:
            assert result.status is ApplyStatus.CONFLICT
            assert len(others) - len(pending) == scaler.max_attempts
            assert final == others[scaler.max_attempts - 1]  # theirs, untouched

    try:
        check()
    finally:
        scaler.close()
        server.stop()


# -- a scripted fault sequence through `tick` -------------------------------------------------------


def test_fault_sequence_keeps_bounds_and_shows_every_fault(kube_server: KubeServer) -> None:
    """Conflicts, permission loss, the target deleted and recreated, an HPA appearing: each
    step's fault is visible as a reason or error, and the replicas stay within [1, 20]."""
    from gemini import loop
    from gemini.metrics import RoutingReader
    from gemini.metrics.kubernetes import KubernetesSource
    from gemini.policy.state import PolicyState

    s = kube_server

    def frontends(n: int) -> None:
        s.put_object(deployment("frontend", replicas=n))

    steps: list[tuple[str, Any, str, int | None]] = [
        # name, setup, expected outcome / error or reason, replicas afterwards
        ("scale up", lambda: frontends(10), "applied", 5),
        (
            "one conflict, then success",
            lambda: (frontends(14), s.fail_next(SCALE_PATH, 409, method="PUT")),
            "applied",
            7,
        ),
        (
            "conflicts until retries run out",
            lambda: (frontends(18), s.fail_next(SCALE_PATH, 409, method="PUT", count=10)),
            "ScaleConflict",
            7,
        ),
        (
            "permission lost",
            lambda: (s.clear_faults(), s.deny("update", "deployments/scale")),
            "Forbidden",
            7,
        ),
        (
            "target deleted",
            lambda: (s.allow_all(), s.delete_object("apps/v1", "Deployment", "web")),
            "TargetNotFound",
            None,
        ),
        ("target recreated", lambda: s.put_object(deployment("web", replicas=2)), "applied", 6),
        ("demand far above max", lambda: frontends(400), "applied", 12),
        (
            "an HPA takes over",
            lambda: s.put_object(hpa("web-hpa", "Deployment", "web")),
            "TargetConflict",
            12,
        ),
        (
            "the HPA is removed",
            lambda: s.delete_object("autoscaling/v2", "HorizontalPodAutoscaler", "web-hpa"),
            "applied",
            20,
        ),
    ]
    s.put_object(deployment("web", replicas=2))
    scaler = KubernetesScaler(s.api_client())
    reader = RoutingReader({"kubernetes": KubernetesSource(s.api_client())})
    state = PolicyState()
    seen = []
    try:
        for i, (name, setup, expect, replicas) in enumerate(steps):
            setup()
            now = NOW + timedelta(minutes=i)
            result = loop.tick(_policy(), state, reader=reader, scaler=scaler, now=now)
            state = result.state
            if result.decision is None:
                seen.append((name, result.error))
            else:
                d = result.decision
                shown = expect == d.outcome or (expect != "applied" and expect in d.reasons)
                seen.append((name, expect if shown else f"{d.outcome} {d.reasons}"))
                assert 1 <= result.decision.desired <= 20
            obj = s.get_object("apps/v1", "Deployment", "web")
            assert (obj["spec"]["replicas"] if obj else None) == replicas, name
    finally:
        reader.close()
        scaler.close()
    assert seen == [(name, expect) for name, _, expect, _ in steps]


def test_hpa_conflict_on_a_cluster_without_autoscaling_v2(
    kube_server: KubeServer, scaler: KubernetesScaler
) -> None:
    kube_server.put_object(deployment("web", replicas=2))
    kube_server.put_object(hpa("old-hpa", "Deployment", "web"))
    kube_server.remove_resource_type("autoscaling", "v2", "horizontalpodautoscalers")
    cap = scaler.capacity(ref(), NOW)
    assert cap.blocked == "TargetConflict"
    assert "HorizontalPodAutoscaler default/old-hpa" in cap.detail["conflict"]
    assert kube_server.requests("GET", "/apis/autoscaling/v1/")


# -- prefetch: one LIST per namespace and kind -----------------------------------------------------


def _gets(server: KubeServer, verb: str) -> list[str]:
    return [
        r.path
        for r in server.requests("GET", "/apis/apps/v1/namespaces/")
        if r.verb == verb and r.resource == "deployments"
    ]


@pytest.fixture
def lister(kube_server: KubeServer) -> Iterator[KubernetesScaler]:
    s = KubernetesScaler(kube_server.api_client(), list_threshold=3)
    s.list_page_size = 2  # pages are followed
    yield s
    s.close()


def test_prefetch_lists_a_namespace_once_and_capacity_makes_no_get(
    kube_server: KubeServer, lister: KubernetesScaler, scaler: KubernetesScaler
) -> None:
    for i in range(5):
        kube_server.put_object(deployment(f"w{i}", "busy", replicas=i + 1, ready=i))
    kube_server.put_object(deployment("x", "busy", replicas=9))  # listed, not a target
    kube_server.put_object(deployment("solo", "quiet", replicas=2))  # below the threshold
    refs = [ref(f"w{i}", ns="busy") for i in range(5)] + [ref("solo", ns="quiet")]
    assert lister.prefetch(refs, NOW) == 3  # 6 objects in pages of 2
    caps = [lister.capacity(r, NOW) for r in refs]
    assert _gets(kube_server, "get") == ["/apis/apps/v1/namespaces/quiet/deployments/solo"]
    # The same capacity (and resourceVersion) as read one by one.
    assert caps == [scaler.capacity(r, NOW) for r in refs]
    assert [(c.current, c.ready) for c in caps[:5]] == [(i + 1, i) for i in range(5)]


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        pytest.param("Deployment", {"updatedReplicas": 1}, id="deployment-rolling-out"),
        pytest.param(
            "StatefulSet",
            {"currentRevision": "web-1", "updateRevision": "web-2"},
            id="statefulset-revision-change",
        ),
    ],
)
def test_prefetched_objects_still_show_a_rollout(
    kube_server: KubeServer,
    lister: KubernetesScaler,
    scaler: KubernetesScaler,
    kind: str,
    status: dict[str, Any],
) -> None:
    # A real API server leaves apiVersion/kind out of a list's items: the rollout check must
    # not depend on the item's own `kind`.
    make = deployment if kind == "Deployment" else statefulset
    for i in range(3):
        obj = make(f"w{i}", replicas=3)
        obj["status"].update(status)
        kube_server.put_object(obj)
    refs = [ref(f"w{i}", kind=kind) for i in range(3)]
    assert lister.prefetch(refs, NOW) == 2
    caps = [lister.capacity(r, NOW) for r in refs]
    assert all(c.reasons == ("RolloutInProgress",) for c in caps)
    assert caps == [scaler.capacity(r, NOW) for r in refs]


@pytest.mark.parametrize(
    ("case", "gets"),
    [
        pytest.param("other-instant", 3, id="listed-objects-serve-only-their-batch-instant"),
        pytest.param("used-once", 3, id="a-listed-object-serves-one-read"),
        pytest.param("created-after-the-list", 1, id="not-listed-read-with-a-get"),
        pytest.param("deleted-after-the-list", 0, id="listed-then-deleted-is-still-read"),
    ],
)
def test_prefetch_is_only_a_shortcut(
    kube_server: KubeServer, lister: KubernetesScaler, case: str, gets: int
) -> None:
    for i in range(3):
        kube_server.put_object(deployment(f"w{i}", replicas=2))
    refs = [ref(f"w{i}") for i in range(3)]
    lister.prefetch(refs, NOW)
    if case == "other-instant":
        caps = [lister.capacity(r, NOW + timedelta(seconds=15)) for r in refs]
    elif case == "used-once":
        [lister.capacity(r, NOW) for r in refs]
        caps = [lister.capacity(r, NOW) for r in refs]
    elif case == "created-after-the-list":
        kube_server.put_object(deployment("late", replicas=4))
        caps = [lister.capacity(ref("late"), NOW)]
        assert caps[0].current == 4
    else:
        # Deleted since the batch's LIST: read from the list, as a GET a moment earlier would
        # have; the write path (/scale) then finds it gone.
        kube_server.delete_object("apps/v1", "Deployment", "w0")
        caps = [lister.capacity(refs[0], NOW)]
        result = lister.apply(refs[0], 3, NOW)
        assert (result.status, result.reason) == (ApplyStatus.FAILED, "TargetNotFound")
    assert len(_gets(kube_server, "get")) == gets
    assert all(c.current == 2 for c in caps if case != "created-after-the-list")


def test_prefetch_without_list_grant_falls_back_to_gets_and_stops_asking(
    kube_server: KubeServer, lister: KubernetesScaler
) -> None:
    for i in range(3):
        kube_server.put_object(deployment(f"w{i}", replicas=2))
    kube_server.deny("list", "deployments")
    refs = [ref(f"w{i}") for i in range(3)]
    assert lister.prefetch(refs, NOW) == 1
    assert [lister.capacity(r, NOW).current for r in refs] == [2, 2, 2]
    assert len(_gets(kube_server, "get")) == 3
    assert lister.prefetch(refs, NOW + timedelta(seconds=15)) == 0  # remembered for a while
    assert lister.prefetch(refs, NOW + timedelta(minutes=6)) == 1


def test_prefetch_is_off_by_default_and_skips_other_kinds(
    kube_server: KubeServer, scaler: KubernetesScaler, lister: KubernetesScaler
) -> None:
    _install_widgets(kube_server)
    for i in range(3):
        kube_server.put_object(deployment(f"w{i}", replicas=2))
    refs = [ref(f"w{i}") for i in range(3)]
    assert scaler.prefetch(refs, NOW) == 0
    widgets = [ref(f"v{i}", kind="Widget", api_version="example.com/v1alpha1") for i in range(3)]
    assert lister.prefetch(widgets, NOW) == 0  # read through /scale
    lists = [r for r in kube_server.requests("GET") if r.verb == "list"]
    assert [r.resource for r in lists if r.resource in ("deployments", "widgets")] == []
