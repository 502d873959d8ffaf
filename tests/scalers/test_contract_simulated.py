"""The scaler contract for `SimulatedScaler` over the simulator's deployment model."""

from __future__ import annotations

import pytest

from gemini.policy.spec import KubernetesTarget, Target
from gemini.scalers import TargetRef
from gemini.scalers.simulated import SimulatedScaler
from gemini.simulate.models import DeploymentModel
from tests.scalers.contract import ScalerContract


class SimulatedAdapter:
    """One scaler drives one model, so each adapter serves one target."""

    asynchronous = False

    def __init__(self) -> None:
        self.scaler = SimulatedScaler(DeploymentModel(2.0, 0.0, 1))

    def create(self, replicas: int) -> TargetRef:
        self.scaler = SimulatedScaler(DeploymentModel(2.0, 0.0, replicas))
        target = Target(kubernetes=KubernetesTarget(name="sim"))
        return TargetRef("default/sim", "default", target)

    def observed(self, ref: TargetRef) -> int:
        return self.scaler.model.count

    def settle(self, ref: TargetRef) -> None:
        pass  # the model takes a count at once; readiness is the model's business

    def writes(self, ref: TargetRef) -> int:
        return self.scaler.applied

    def make_busy(self, ref: TargetRef) -> bool:
        return False

    def conflict_once(self, ref: TargetRef) -> bool:
        return False

    def remove(self, ref: TargetRef) -> bool:
        return False


@pytest.fixture
def adapter() -> SimulatedAdapter:
    return SimulatedAdapter()


class TestSimulatedContract(ScalerContract):
    pass
