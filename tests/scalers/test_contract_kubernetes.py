"""The scaler contract for `KubernetesScaler`: the real `kubernetes` client against the in-repo
HTTP API server (tests/fakes/kube.py), Deployments through `/scale`."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from gemini.policy.spec import KubernetesTarget, Target
from gemini.scalers import TargetRef
from gemini.scalers.kubernetes import KubernetesScaler
from tests.fakes.kube import KubeServer, deployment
from tests.scalers.contract import ScalerContract


class KubernetesAdapter:
    asynchronous = False  # a /scale write is complete when it returns; rollout is not "busy"

    def __init__(self, server: KubeServer) -> None:
        self.server = server
        self.scaler = KubernetesScaler(server.api_client(), timeout_seconds=5)
        self._ids = itertools.count(1)

    @staticmethod
    def _name(ref: TargetRef) -> str:
        assert ref.target.kubernetes is not None
        return ref.target.kubernetes.name

    def _scale_path(self, ref: TargetRef) -> str:
        return f"/apis/apps/v1/namespaces/default/deployments/{self._name(ref)}/scale"

    def create(self, replicas: int) -> TargetRef:
        name = f"web{next(self._ids)}"
        self.server.put_object(deployment(name, replicas=replicas))
        target = Target(kubernetes=KubernetesTarget(name=name))
        return TargetRef(f"default/{name}", "default", target)

    def observed(self, ref: TargetRef) -> int:
        obj = self.server.get_object("apps/v1", "Deployment", self._name(ref))
        assert obj is not None
        return int(obj["spec"]["replicas"])

    def settle(self, ref: TargetRef) -> None:
        self.server.settle("apps/v1", "Deployment", self._name(ref))

    def writes(self, ref: TargetRef) -> int:
        path = self._scale_path(ref)
        return sum(len(self.server.requests(method, path)) for method in ("PUT", "PATCH", "POST"))

    def make_busy(self, ref: TargetRef) -> bool:
        return False  # Kubernetes has no operation that blocks a /scale write

    def conflict_once(self, ref: TargetRef) -> bool:
        self.server.fail_next(self._scale_path(ref), 409, method="PUT")
        return True

    def remove(self, ref: TargetRef) -> bool:
        self.server.delete_object("apps/v1", "Deployment", self._name(ref))
        return True


@pytest.fixture
def adapter() -> Iterator[KubernetesAdapter]:
    with KubeServer(bookmark_interval=0.2) as server:
        adapter = KubernetesAdapter(server)
        yield adapter
        adapter.scaler.close()


class TestKubernetesContract(ScalerContract):
    pass
