"""Backend models for the simulator: how demand and provisioned capacity become observables.

Owns the closed-loop dynamics (pods with a start-up delay, a Pub/Sub-style queue, Bigtable nodes
with a linear rebalance ramp). Time is plain epoch seconds (floats) passed in by the caller; a
model never reads the clock. Must not import `gemini.metrics`, `gemini.scalers` or any I/O library
(`gemini.scalers.simulated` wraps these models).

Every model has the same small surface:

- `count`: provisioned units (replicas / nodes) - what is paid for;
- `ready(t)`: units serving at `t` (a float for Bigtable's ramp);
- `set_count(n, t)`: the scaler's action at `t`;
- `advance(t, load)`: move to `t`; `load` (per second) is the demand held since the last call;
- `observe(name, load, t)`: one observable (`load`, `utilization`, `backlog`,
  `oldestUnackedAgeSeconds`, `cpu`, `storage`);
- `floor`: a hard lower bound on units (Bigtable storage), or None.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(slots=True)
class _Batch:
    """Units created together: one entry however many (a billion replicas cost no memory)."""

    at: float  # pods: ready-at time; Bigtable nodes: added-at time
    n: int


OBSERVABLES = ("load", "utilization", "backlog", "oldestUnackedAgeSeconds", "cpu", "storage")
# what each backend kind produces (anything else is an error in the scenario, not a silent 0)
PRODUCES: dict[str, tuple[str, ...]] = {
    "deployment": ("load", "utilization", "cpu"),
    "queue": ("load", "utilization", "cpu", "backlog", "oldestUnackedAgeSeconds"),
    "bigtable": ("load", "utilization", "cpu", "storage"),
}


class DeploymentModel:
    """Replicas that serve `capacity_per_replica` load/s each, `startup_seconds` after creation.

    Scale-down removes pending replicas first (newest first), then ready ones, immediately.
    `utilization` is load / (provisioned replicas x capacity): a starting replica counts with 0 %
    usage, HPA's rule for unready pods on scale-up (with no replicas: load / one replica).
    """

    kind = "deployment"

    def __init__(
        self, capacity_per_replica: float, startup_seconds: float = 0.0, initial: int = 1
    ) -> None:
        if capacity_per_replica <= 0:
            raise ValueError("capacity_per_replica must be > 0")
        if startup_seconds < 0:
            raise ValueError("startup_seconds must be >= 0")
        if initial < 0:
            raise ValueError("initial must be >= 0")
        self.capacity_per_replica = float(capacity_per_replica)
        self.startup_seconds = float(startup_seconds)
        self._ready = int(initial)
        self._pending: deque[_Batch] = deque()  # by ready-at time, oldest first
        self._n_pending = 0
        self.floor: int | None = None

    @property
    def count(self) -> int:
        return self._ready + self._n_pending

    def _promote(self, t: float) -> None:
        pending = self._pending
        while pending and pending[0].at <= t:
            batch = pending.popleft()
            self._ready += batch.n
            self._n_pending -= batch.n

    def ready(self, t: float) -> float:
        self._promote(t)
        return float(self._ready)

    def set_count(self, n: int, t: float) -> None:
        if n < 0:
            raise ValueError("capacity must be >= 0")
        self._promote(t)
        cur = self.count
        if n > cur:
            if self.startup_seconds <= 0:
                self._ready += n - cur
            else:
                at = t + self.startup_seconds
                pending = self._pending
                if pending and pending[-1].at == at:
                    pending[-1].n += n - cur
                else:
                    pending.append(_Batch(at, n - cur))
                self._n_pending += n - cur
        else:
            drop = cur - n
            pending = self._pending
            while drop and pending:
                newest = pending[-1]
                take = min(drop, newest.n)
                newest.n -= take
                self._n_pending -= take
                drop -= take
                if newest.n == 0:
                    pending.pop()
            self._ready -= drop

    def advance(self, t: float, load: float) -> None:
        self._promote(t)

    def ready_capacity(self, t: float) -> float:
        return self.ready(t) * self.capacity_per_replica

    def observe(self, name: str, load: float, t: float) -> float:
        if name == "utilization":
            n = self.count
            return load / (max(n, 1) * self.capacity_per_replica)
        if name == "load":
            return load
        if name == "cpu":
            cap = self.ready_capacity(t)
            return load / cap if cap > 0 else load / self.capacity_per_replica
        if name in ("backlog", "oldestUnackedAgeSeconds"):
            return 0.0
        raise KeyError(name)


class QueueModel(DeploymentModel):
    """Pub/Sub-style subscription drained by workers (a `DeploymentModel`).

    Over each step the backlog grows by arrivals minus what the ready workers consume (never
    below zero). Messages are consumed in arrival order, so the oldest unacked message is found
    exactly from cumulative arrivals vs cumulative consumption (arrivals are spread evenly inside
    a step).
    """

    kind = "queue"

    def __init__(
        self,
        capacity_per_replica: float,
        startup_seconds: float = 0.0,
        initial: int = 1,
        initial_backlog: float = 0.0,
    ) -> None:
        super().__init__(capacity_per_replica, startup_seconds, initial)
        self.backlog = float(initial_backlog)
        self._last_t: float | None = None
        self._arrived = float(initial_backlog)  # cumulative arrivals
        self._consumed = 0.0  # cumulative consumption
        # (start time, cumulative arrivals at start, end time, cumulative arrivals at end)
        self._segments: deque[tuple[float, float, float, float]] = deque()

    def advance(self, t: float, load: float) -> None:
        last = self._last_t
        self._last_t = t
        if last is None:
            if self.backlog > 0:
                self._segments.append((t, 0.0, t, self._arrived))
            self._promote(t)
            return
        dt = t - last
        if dt <= 0:
            return
        # workers that become ready inside the step serve from their ready time
        served = self._ready * self.capacity_per_replica * dt
        for batch in self._pending:
            if batch.at >= t:
                break
            served += batch.n * self.capacity_per_replica * (t - max(batch.at, last))
        self._promote(t)
        arrivals = load * dt
        if arrivals > 0:
            self._segments.append((last, self._arrived, t, self._arrived + arrivals))
            self._arrived += arrivals
        available = self._arrived - self._consumed
        self._consumed += min(served, available)
        self.backlog = self._arrived - self._consumed
        segs = self._segments
        while segs and segs[0][3] <= self._consumed + 1e-9:
            segs.popleft()

    def oldest_age(self, t: float) -> float:
        if self.backlog <= 1e-9 or not self._segments:
            return 0.0
        t0, a0, t1, a1 = self._segments[0]
        frac = (self._consumed - a0) / (a1 - a0) if a1 > a0 else 0.0
        arrived_at = t0 + (t1 - t0) * min(max(frac, 0.0), 1.0)
        return max(0.0, t - arrived_at)

    def observe(self, name: str, load: float, t: float) -> float:
        if name == "backlog":
            return self.backlog
        if name == "oldestUnackedAgeSeconds":
            return self.oldest_age(t)
        return super().observe(name, load, t)


class BigtableModel:
    """Bigtable cluster nodes. A new node is billed at once and its serving capacity ramps
    linearly from 0 to `capacity_per_node` over `rebalance_seconds` (tablet rebalancing).

    CPU = load / effective capacity. Removing nodes drops the newest (least ramped) first.
    `storage_tb` with `storage_per_node_tb` x `storage_target` gives the storage floor.
    """

    kind = "bigtable"

    def __init__(
        self,
        capacity_per_node: float,
        rebalance_seconds: float = 1200.0,
        initial: int = 1,
        storage_tb: float = 0.0,
        storage_per_node_tb: float = 5.0,
        storage_target: float = 0.7,
    ) -> None:
        if capacity_per_node <= 0:
            raise ValueError("capacity_per_node must be > 0")
        if initial < 1:
            raise ValueError("a Bigtable cluster has at least 1 node")
        self.capacity_per_replica = float(capacity_per_node)
        self.rebalance_seconds = float(rebalance_seconds)
        self._nodes: list[_Batch] = [_Batch(-math.inf, int(initial))]  # by added-at, oldest first
        self._count = int(initial)
        self.storage_tb = float(storage_tb)
        self.storage_per_node_tb = float(storage_per_node_tb)
        self.floor: int | None = (
            max(1, math.ceil(storage_tb / (storage_per_node_tb * storage_target) - 1e-9))
            if storage_tb > 0
            else None
        )
        # cache: the leading batches that are fully ramped, and how many nodes they hold
        self._mature = 1
        self._mature_nodes = int(initial)
        self._last_t = -math.inf

    @property
    def count(self) -> int:
        return self._count

    def ready(self, t: float) -> float:
        nodes = self._nodes
        ramp = self.rebalance_seconds
        if t < self._last_t:  # the cache assumes time moves forward
            self._mature = self._mature_nodes = 0
        self._last_t = t
        i, done = self._mature, self._mature_nodes
        while i < len(nodes) and (ramp <= 0 or t - nodes[i].at >= ramp):
            done += nodes[i].n
            i += 1
        self._mature, self._mature_nodes = i, done
        if i == len(nodes):
            return float(done)
        total = float(done)
        for batch in nodes[i:]:
            total += batch.n * min(1.0, max(0.0, (t - batch.at) / ramp))
        return total

    def set_count(self, n: int, t: float) -> None:
        if n < 1:
            raise ValueError("a Bigtable cluster has at least 1 node")
        cur = self._count
        nodes = self._nodes
        if n > cur:
            if len(nodes) > self._mature and nodes[-1].at == t:  # not in the cached prefix
                nodes[-1].n += n - cur
            else:
                nodes.append(_Batch(t, n - cur))
        elif n < cur:
            drop = cur - n
            while drop:
                newest = nodes[-1]
                take = min(drop, newest.n)
                newest.n -= take
                drop -= take
                if len(nodes) <= self._mature:  # a batch of the fully ramped prefix
                    self._mature_nodes -= take
                if newest.n == 0:
                    nodes.pop()
                    self._mature = min(self._mature, len(nodes))
        self._count = n

    def advance(self, t: float, load: float) -> None:
        return None

    def ready_capacity(self, t: float) -> float:
        return self.ready(t) * self.capacity_per_replica

    def observe(self, name: str, load: float, t: float) -> float:
        if name == "cpu" or name == "utilization":
            cap = self.ready_capacity(t)
            return load / cap if cap > 0 else load / self.capacity_per_replica
        if name == "load":
            return load
        if name == "storage":
            total = self._count * self.storage_per_node_tb
            return self.storage_tb / total if total > 0 else 0.0
        if name in ("backlog", "oldestUnackedAgeSeconds"):
            return 0.0
        raise KeyError(name)


Model = DeploymentModel | QueueModel | BigtableModel


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Everything needed to build a fresh model (the replay builds one per run)."""

    kind: str
    capacity_per_replica: float
    startup_seconds: float = 0.0
    initial: int = 1
    rebalance_seconds: float = 1200.0
    storage_tb: float = 0.0
    storage_per_node_tb: float = 5.0
    storage_target: float = 0.7
    initial_backlog: float = 0.0

    def build(self, initial: int | None = None) -> Model:
        n = self.initial if initial is None else initial
        if self.kind == "deployment":
            return DeploymentModel(self.capacity_per_replica, self.startup_seconds, n)
        if self.kind == "queue":
            return QueueModel(
                self.capacity_per_replica, self.startup_seconds, n, self.initial_backlog
            )
        if self.kind == "bigtable":
            return BigtableModel(
                self.capacity_per_replica,
                self.rebalance_seconds,
                max(1, n),
                self.storage_tb,
                self.storage_per_node_tb,
                self.storage_target,
            )
        raise ValueError(f"unknown backend kind {self.kind!r}; known: bigtable, deployment, queue")

    @property
    def floor(self) -> int:
        """The least capacity the backend allows (Bigtable: 1 node and the storage floor)."""
        if self.kind != "bigtable":
            return 0
        if self.storage_tb > 0:
            need = self.storage_tb / (self.storage_per_node_tb * self.storage_target)
            return max(1, math.ceil(need - 1e-9))
        return 1
