"""The generated CRD fits what the controller writes (printer columns, status), and the deploy
manifests hold the promises docs/controller.md makes (least privilege, hardening)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gemini.controller import status as st
from gemini.loop import TickResult
from gemini.policy.decision import Decision, MetricResult, MetricStatus
from gemini.policy.state import PolicyState
from tests.controller.conftest import CRD_PATH, ROOT
from tests.controller.test_status import NOW

DEPLOY = ROOT / "deploy"


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def crd_version() -> dict[str, Any]:
    if not CRD_PATH.exists():
        pytest.skip("deploy/crd.yaml not generated yet")
    v: dict[str, Any] = docs(CRD_PATH)[0]["spec"]["versions"][0]
    return v


def jsonpath_get(obj: dict[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.lstrip(".").split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def test_printer_columns_show_what_the_controller_writes() -> None:
    cols = {c["name"]: c["jsonPath"] for c in crd_version()["additionalPrinterColumns"]}
    assert {"Target", "Min", "Max", "Current", "Desired", "Mode", "Age"} <= set(cols)
    d = Decision(
        "ns/p",
        NOW,
        "Active",
        2,
        5,
        5,
        1,
        10,
        ("ScaleUp",),
        (MetricResult("m", MetricStatus.OK, 1.0),),
        applied=True,
        outcome="applied",
    )
    status = st.tick_status(
        {}, 1, TickResult("ns/p", PolicyState(), d), NOW, target="Deployment/web"
    )
    obj = {"status": status, "spec": {"minReplicas": 1, "maxReplicas": 10, "mode": "Active"}}
    for name in ("Target", "Current", "Desired"):
        assert jsonpath_get(obj, cols[name]) is not None, name
    assert jsonpath_get(obj, cols["Target"]) == "Deployment/web"


def test_status_subresource_and_schema_accept_our_status() -> None:
    v = crd_version()
    assert "status" in v.get("subresources", {})
    status_schema = v["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status_schema.get("x-kubernetes-preserve-unknown-fields") or {
        "conditions",
        "state",
        "observedGeneration",
        "lastDecision",
    } <= set(status_schema.get("properties", {}))


def test_kubectl_explain_text_is_there() -> None:
    spec = crd_version()["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec.get("description")
    for field in ("minReplicas", "maxReplicas", "metrics", "target", "intervalSeconds", "mode"):
        assert spec["properties"][field].get("description"), field


def test_rbac_is_least_privilege() -> None:
    objs = docs(DEPLOY / "rbac.yaml")
    rules = [r for o in objs if o["kind"] in ("ClusterRole", "Role") for r in o["rules"]]
    for r in rules:
        assert "*" not in r["verbs"] and "*" not in r["resources"] and "*" not in r["apiGroups"]
    cluster = next(o for o in objs if o["kind"] == "ClusterRole")
    assert not any(r["resources"] == ["leases"] for r in cluster["rules"])  # only in its namespace
    granted = {
        (g, res, v)
        for r in rules
        for g in r["apiGroups"]
        for res in r["resources"]
        for v in r["verbs"]
    }
    for need in [
        ("autoscaling.gemini.dev", "scalingpolicies", "watch"),
        ("autoscaling.gemini.dev", "scalingpolicies/status", "patch"),
        ("apps", "deployments/scale", "update"),
        ("apps", "deployments", "list"),  # one LIST per namespace per batch
        ("", "events", "create"),
        ("coordination.k8s.io", "leases", "update"),
    ]:
        assert need in granted, need
    assert not any(res.startswith("secrets") for _, res, _ in granted)


def test_deployment_is_hardened_and_highly_available() -> None:
    dep = next(o for o in docs(DEPLOY / "controller.yaml") if o["kind"] == "Deployment")
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    [c] = pod["containers"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    data_dir = next(e["value"] for e in c["env"] if e["name"] == "GEMINI_DATA_DIR")
    assert data_dir in mounts  # the SQLite store is writable despite the read-only root
    sa = next(o for o in docs(DEPLOY / "serviceaccount.yaml"))
    assert "iam.gke.io/gcp-service-account" in sa["metadata"]["annotations"]
    assert pod["serviceAccountName"] == sa["metadata"]["name"]


def test_kustomization_lists_existing_files() -> None:
    kust = docs(DEPLOY / "kustomization.yaml")[0]
    for res in kust["resources"]:
        assert (DEPLOY / res).exists(), res
    assert "crd.yaml" in kust["resources"]


def test_grafana_dashboard_queries_only_series_the_controller_exports() -> None:
    import json
    import re

    from prometheus_client.parser import text_string_to_metric_families

    from gemini.controller.telemetry import Telemetry

    t = Telemetry()
    # touch every labelled family once so that it appears in the exposition
    t.desired.labels("ns", "p").set(1)
    t.current.labels("ns", "p").set(1)
    t.metric_value.labels("ns", "p", "m").set(1)
    t.metric_target.labels("ns", "p", "m").set(1)
    t.metric_age.labels("ns", "p", "m").set(1)
    t.decisions.labels("ns", "p", "ScaleUp").inc()
    t.scale_events.labels("ns", "p", "up").inc()
    t.errors.labels("x").inc()
    t.watch_restarts.labels("gone").inc()
    t.policies.labels("ready").set(1)
    from prometheus_client import generate_latest

    exported = set()
    for fam in text_string_to_metric_families(generate_latest(t.registry).decode()):
        exported.update(s.name for s in fam.samples)
    dash = json.loads((DEPLOY / "grafana" / "gemini-dashboard.json").read_text())
    exprs = [tg["expr"] for p in dash["panels"] for tg in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(gemini_[a-z_]+)", e)}
    assert used and used <= exported, used - exported
