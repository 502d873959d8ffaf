"""`loop.tick` (one policy, the simulator's path) and `loop.tick_batch` (the controller's) give
the same result for the same policy, state and inputs, on every path through the shell."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from gemini import loop
from gemini.errors import ScaleError
from gemini.metrics import MetricRequest
from gemini.policy.decision import Capacity
from gemini.policy.spec import ScalingPolicy, parse_policy
from gemini.policy.state import PolicyState
from gemini.scalers import TargetRef
from gemini.scalers.simulated import SimulatedScaler
from gemini.series import Observation
from gemini.simulate.models import DeploymentModel

NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def policy(mode: str = "Active") -> ScalingPolicy:
    return parse_policy(
        {
            "apiVersion": "autoscaling.gemini.dev/v1alpha1",
            "kind": "ScalingPolicy",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "mode": mode,
                "target": {"kubernetes": {"name": "web"}},
                "minReplicas": 1,
                "maxReplicas": 10,
                "metrics": [
                    {
                        "name": "rps",
                        "source": {"recorded": {"file": "rps.csv"}},
                        "target": {"type": "AverageValue", "averageValue": 100},
                    }
                ],
            },
        }
    )


class Reader:
    """A MetricReader that answers every request with one value (or a failure), and counts."""

    def __init__(self, value: float | None) -> None:
        self.value = value
        self.calls = 0

    def read(self, requests: Sequence[MetricRequest], now: datetime) -> list[Observation]:
        self.calls += 1
        name = [r.metric.name for r in requests]
        if self.value is None:
            return [Observation.failed(n, "unavailable", "source down") for n in name]
        return [Observation.of(n, now, self.value) for n in name]


class Failing(SimulatedScaler):
    """A scaler whose target cannot be read."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(DeploymentModel(100.0, 0.0, 3))
        self.exc = exc

    def capacity(self, ref: TargetRef, now: datetime) -> Capacity:
        raise self.exc


def simulated() -> SimulatedScaler:
    return SimulatedScaler(DeploymentModel(100.0, 0.0, 3))


CASES: list[Any] = [
    pytest.param(simulated, 650.0, "Active", id="scale-up-applied"),
    pytest.param(simulated, 300.0, "Active", id="unchanged"),
    pytest.param(simulated, 650.0, "Shadow", id="shadow-records-only"),
    pytest.param(simulated, None, "Active", id="metric-failed"),
    pytest.param(
        lambda: Failing(ScaleError("403 forbidden", "TargetForbidden")),
        650.0,
        "Active",
        id="target-read-scale-error",
    ),
    pytest.param(
        lambda: Failing(RuntimeError("boom")), 650.0, "Active", id="target-read-unexpected"
    ),
]


@pytest.mark.parametrize(("make_scaler", "value", "mode"), CASES)
def test_tick_is_tick_batch_of_one(
    make_scaler: Callable[[], SimulatedScaler], value: float | None, mode: str
) -> None:
    pol = policy(mode)
    one_reader, batch_reader = Reader(value), Reader(value)
    one_scaler, batch_scaler = make_scaler(), make_scaler()
    one = loop.tick(pol, PolicyState(), reader=one_reader, scaler=one_scaler, now=NOW)
    [batch] = loop.tick_batch(
        [(pol, PolicyState())], reader=batch_reader, scaler=batch_scaler, now=NOW
    )
    assert one == batch
    assert one.policy == "shop/web"
    assert one_scaler.model.count == batch_scaler.model.count
    # a target that cannot be read is not worth a metric read
    assert one_reader.calls == batch_reader.calls == (0 if one.error else 1)


class Flagged(SimulatedScaler):
    """A simulated target whose capacity carries the given flags (busy, blocked)."""

    def __init__(self, **flags: Any) -> None:
        super().__init__(DeploymentModel(100.0, 0.0, 3))
        self.flags = flags

    def capacity(self, ref: TargetRef, now: datetime) -> Capacity:
        return Capacity(self.model.count, **self.flags)


OUTCOMES: list[Any] = [
    # value (3 replicas at 100 each), mode, capacity flags -> applied, outcome, replicas after
    pytest.param(650.0, "Active", {}, True, "applied", 7, id="applied"),
    pytest.param(300.0, "Active", {}, False, "unchanged", 3, id="unchanged"),
    pytest.param(650.0, "Shadow", {}, False, "shadow", 3, id="shadow"),
    pytest.param(300.0, "Shadow", {}, False, "shadow", 3, id="shadow-unchanged"),
    pytest.param(650.0, "Paused", {}, False, "paused", 3, id="paused"),
    pytest.param(650.0, "Active", {"busy": True}, False, "busy", 3, id="busy"),
    pytest.param(650.0, "Active", {"blocked": "HPAOwnsTarget"}, False, "refused", 3, id="refused"),
    pytest.param(300.0, "Active", {"busy": True}, False, "unchanged", 3, id="busy-unchanged"),
]


@pytest.mark.parametrize(("value", "mode", "flags", "applied", "outcome", "replicas"), OUTCOMES)
def test_every_decision_says_what_became_of_it(
    value: float, mode: str, flags: dict[str, Any], applied: bool, outcome: str, replicas: int
) -> None:
    """`decide` settles paused, shadow and unchanged itself (nothing to apply); the shell
    fills the rest after it acts. Either way the record says which."""
    scaler = Flagged(**flags)
    result = loop.tick(policy(mode), PolicyState(), reader=Reader(value), scaler=scaler, now=NOW)
    assert result.decision is not None
    assert (result.decision.applied, result.decision.outcome) == (applied, outcome)
    assert scaler.model.count == replicas
    assert (result.apply is None) == (outcome != "applied")
