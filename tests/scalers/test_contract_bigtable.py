"""The scaler contract for `BigtableScaler`: the real admin client against the gRPC fake."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from gemini.policy.spec import BigtableTarget, Target
from gemini.scalers import TargetRef
from gemini.scalers.bigtable import BigtableScaler, admin_client_for, cluster_name
from tests.fakes.bigtable_admin import FakeBigtableAdmin, running
from tests.scalers.contract import ScalerContract


class BigtableAdapter:
    asynchronous = True

    def __init__(self, fake: FakeBigtableAdmin) -> None:
        self.fake = fake
        self.scaler = BigtableScaler(admin_client_for(fake.address), retry_deadline_seconds=0.5)
        self._ids = itertools.count(1)

    def _name(self, ref: TargetRef) -> str:
        assert ref.target.bigtable is not None
        return cluster_name(ref.target.bigtable)

    def create(self, replicas: int) -> TargetRef:
        cluster = f"c{next(self._ids)}"
        self.fake.add_cluster("p", "i", cluster, replicas)
        target = Target(bigtable=BigtableTarget(project="p", instance="i", cluster=cluster))
        return TargetRef(f"default/{cluster}", "default", target)

    def observed(self, ref: TargetRef) -> int:
        return int(self.fake.cluster(self._name(ref)).serve_nodes)

    def settle(self, ref: TargetRef) -> None:
        for op in self.fake.in_flight(self._name(ref)):
            self.fake.complete(op.name)

    def writes(self, ref: TargetRef) -> int:
        name = self._name(ref)
        return sum(
            1 for r in self.fake.requests("PartialUpdateCluster") if r.startswith(name + " ")
        )

    def make_busy(self, ref: TargetRef) -> bool:
        self.fake.external_resize(self._name(ref), 8)
        return True

    def conflict_once(self, ref: TargetRef) -> bool:
        # Bigtable has no optimistic concurrency; its "conflict" is another resize in flight,
        # which the server answers with FAILED_PRECONDITION.
        self.fake.inject("PartialUpdateCluster", "FAILED_PRECONDITION", "cluster is being updated")
        return True

    def remove(self, ref: TargetRef) -> bool:
        self.fake.delete_cluster(self._name(ref))
        return True


@pytest.fixture
def adapter() -> Iterator[BigtableAdapter]:
    with running(polls_to_complete=None) as fake:
        yield BigtableAdapter(fake)


class TestBigtableContract(ScalerContract):
    pass
