"""Fixtures for the controller tests: the fake API server with the ScalingPolicy CRD installed
from `deploy/crd.yaml` (the generated one), and manifest builders."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

import tests.fakes.kube as fake_kube
from tests.fakes.kube import KubeServer

# The fake server writes headers and body in two sends; with Nagle's algorithm on, every
# response then waits ~40 ms for the client's delayed ACK. `disable_nagle_algorithm` is the
# stdlib StreamRequestHandler switch for exactly this (reported to the fake's owner).
fake_kube._Handler.disable_nagle_algorithm = True

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "deploy" / "crd.yaml"
SP = ("autoscaling.gemini.dev/v1alpha1", "ScalingPolicy")


def load_crd() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return doc


@pytest.fixture
def kube() -> Iterator[KubeServer]:
    server = KubeServer(bookmark_interval=0.2).start()
    server.register_crd(load_crd())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(kube: KubeServer) -> Iterator[client.ApiClient]:
    with kube.api_client() as api_client:
        yield api_client


def policy(
    name: str,
    *,
    namespace: str = "default",
    target: str = "web",
    metric: str = "load",
    average_value: float = 10.0,
    min_replicas: int = 1,
    max_replicas: int = 20,
    interval: int = 1,
    scale_down_window: int | None = 0,
    mode: str = "Active",
    extra_spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ScalingPolicy on Deployment `target` tracking an in-memory metric (AverageValue)."""
    spec: dict[str, Any] = {
        "target": {"kubernetes": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}},
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "intervalSeconds": interval,
        "mode": mode,
        "metrics": [
            {
                "name": metric,
                "source": {"recorded": {"file": "unused.csv"}},
                "target": {"type": "AverageValue", "averageValue": average_value},
            }
        ],
    }
    if scale_down_window is not None:
        spec["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": scale_down_window}}
    spec.update(extra_spec or {})
    return {
        "apiVersion": SP[0],
        "kind": SP[1],
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def eventually(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll `check` until it returns a truthy value (returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
