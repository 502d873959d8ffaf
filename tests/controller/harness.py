"""Builds a real controller against the fake API server for the end-to-end tests.

The metric side is the package's in-memory source (`gemini.metrics.memory.MemorySource`) behind
the real `RoutingReader`; the scaler is the real `KubernetesScaler` behind `RoutingScaler`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client

from gemini.clock import Clock, ManualClock
from gemini.controller.leader import LeaderElector, LeaseConfig
from gemini.controller.runtime import Controller
from gemini.metrics import RoutingReader
from gemini.metrics.memory import MemorySource
from gemini.scalers import RoutingScaler
from gemini.scalers.kubernetes import KubernetesScaler
from tests.fakes.kube import KubeServer

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def build(
    kube: KubeServer,
    clock: Clock,
    mem: MemorySource,
    *,
    identity: str = "c1",
    lease: dict[str, float] | None = None,
    namespaces: list[str] | None = None,
    list_threshold: int = 0,
    **kw: Any,
) -> Controller:
    api = kube.api_client()
    elector = None
    if lease is not None:
        cfg = LeaseConfig(namespace="gemini-system", identity=identity, **lease)
        elector = LeaderElector(client.CoordinationV1Api(api), cfg, clock)
    ctrl = Controller(
        custom_api=client.CustomObjectsApi(api),
        core_api=client.CoreV1Api(api),
        reader=RoutingReader({"recorded": mem}),
        scaler=RoutingScaler({"kubernetes": KubernetesScaler(api, list_threshold=list_threshold)}),
        clock=clock,
        elector=elector,
        namespaces=namespaces,
        identity=identity,
        watch_timeout_seconds=5,
        workers=8,
        **kw,
    )
    if elector is not None:
        elector._on_started = ctrl.on_started_leading
        elector._on_stopped = ctrl.on_stopped_leading
    return ctrl


class Stepper:
    """Drives a controller's scheduler with a ManualClock: `step(seconds)` advances and runs
    every batch that became due, waiting for it to finish."""

    def __init__(self, ctrl: Controller, clock: ManualClock) -> None:
        self.ctrl = ctrl
        self.clock = clock

    def step(self, seconds: float = 1.0) -> int:
        self.clock.advance(timedelta(seconds=seconds))
        return self.ctrl.scheduler.run_due(self.clock.now(), wait=True)

    def run_for(self, seconds: int) -> None:
        for _ in range(seconds):
            self.step(1.0)
