"""Opt-in: the controller against a real cluster.

    GEMINI_E2E=1 KUBECONFIG=~/.kube/config .venv/bin/pytest tests/controller/test_real_cluster.py -m cluster

Needs the CRD installed (`kubectl apply -f deploy/crd.yaml`) and rights to create a namespace,
Deployments, ScalingPolicies, Events and Leases in it. Creates `gemini-e2e-<random>` and deletes
it afterwards. The controller runs in this process (metrics from the in-memory source); the
scaler, watch, status, events and Lease are the real ones against the real API server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from gemini import kubeclient
from gemini.clock import SystemClock
from gemini.controller.leader import LeaderElector, LeaseConfig
from gemini.controller.runtime import Controller
from gemini.metrics import RoutingReader
from gemini.metrics.memory import MemorySource
from gemini.scalers import RoutingScaler
from gemini.scalers.kubernetes import KubernetesScaler
from tests.controller.conftest import eventually, policy

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        os.environ.get("GEMINI_E2E") != "1", reason="set GEMINI_E2E=1 and KUBECONFIG"
    ),
]


@pytest.fixture
def cluster() -> Iterator[tuple[client.ApiClient, str]]:
    api = kubeclient.api_client(kubeconfig=os.environ.get("KUBECONFIG"))
    ns = f"gemini-e2e-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": ns}})
    try:
        yield api, ns
    finally:
        core.delete_namespace(ns)


def test_scales_a_deployment_in_a_real_cluster(cluster: tuple[client.ApiClient, str]) -> None:
    api, ns = cluster
    apps = client.AppsV1Api(api)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.9"}]
                    },
                },
            },
        },
    )
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(
        "autoscaling.gemini.dev", "v1alpha1", ns, "scalingpolicies", policy("web", namespace=ns)
    )
    mem, clock = MemorySource(), SystemClock()
    elector = LeaderElector(
        client.CoordinationV1Api(api), LeaseConfig(namespace=ns, identity="e2e"), clock
    )
    ctrl = Controller(
        custom_api=custom,
        core_api=client.CoreV1Api(api),
        reader=RoutingReader({"recorded": mem}),
        scaler=RoutingScaler({"kubernetes": KubernetesScaler(api)}),
        clock=clock,
        elector=elector,
        namespaces=[ns],
    )
    elector._on_started = ctrl.on_started_leading
    mem.set("load", 30.0, clock.now())
    ctrl.start()
    try:
        eventually(
            lambda: apps.read_namespaced_deployment("web", ns).spec.replicas == 3, timeout=60
        )

        def status() -> dict[str, Any]:
            obj = custom.get_namespaced_custom_object(
                "autoscaling.gemini.dev", "v1alpha1", ns, "scalingpolicies", "web"
            )
            return dict(obj.get("status") or {})

        eventually(lambda: status().get("desiredReplicas") == 3, timeout=30)
    finally:
        ctrl.stop(timeout=10)
