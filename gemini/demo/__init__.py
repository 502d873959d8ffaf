"""`gemini demo`: the whole loop on one machine, with no cluster and no cloud.

Runs the controller's own pieces — its `Scheduler` (epoch-aligned batches), `loop.tick_batch`
(hence `engine.decide`), `Telemetry` and ops server (`/healthz`, `/readyz`, `/metrics`), the
buffered decision store and the dashboard — against simulated backends from the simulator
(`gemini.simulate.models`): a Pub/Sub subscription drained by a worker Deployment (pods start in
60 s) and the Bigtable cluster the workers write to (new nodes ramp up over 20 minutes). The
load is the project's own generated series (`gemini.demo.load`), replayed `speed` times faster
than real time. What is not simulated: the Kubernetes watch, status writes and leader election
(there is no API server); `gemini controller` adds those.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from gemini import loop
from gemini.clock import ScaledClock, iso
from gemini.demo.load import DEMO_START, demand
from gemini.metrics import MetricRequest
from gemini.policy.decision import Decision
from gemini.policy.spec import ScalingPolicy
from gemini.policy.state import PolicyState
from gemini.scalers import RoutingScaler
from gemini.scalers.simulated import SimulatedScaler
from gemini.series import Observation, Sample
from gemini.simulate.models import BigtableModel, QueueModel

WORKER_CAPACITY = 100.0  # messages/s one worker handles
WORKER_STARTUP_SECONDS = 60.0
WRITES_PER_MESSAGE = 10.0  # Bigtable writes per processed message
NODE_CAPACITY = 10_000.0  # writes/s one Bigtable node serves at 100 % CPU
STEP_SECONDS = 5.0  # the world advances in steps of at most this much simulated time
METRIC_DELAY_SECONDS = 60.0  # Pub/Sub and Bigtable metrics are visible this late
SAMPLE_SECONDS = 60.0  # and sampled this often


class DemoWorld:
    """The simulated backends and the metric reader over them (thread-safe).

    Time only moves forward: `advance_to(t)` steps the models with the generated demand. Metric
    samples are taken every `SAMPLE_SECONDS` and become visible `METRIC_DELAY_SECONDS` later, as
    Cloud Monitoring's Pub/Sub and Bigtable metrics do; replicas of the worker Deployment are
    read live, as the Kubernetes API would answer.
    """

    def __init__(self, start: datetime) -> None:
        self.workers = QueueModel(WORKER_CAPACITY, WORKER_STARTUP_SECONDS, initial=2)
        self.bigtable = BigtableModel(NODE_CAPACITY, rebalance_seconds=1200.0, initial=3)
        self._t = start.timestamp()
        self._lock = threading.RLock()
        self._throughput = 0.0
        self._samples: dict[str, list[Sample]] = {"backlog": [], "age": [], "cpu": []}
        self._next_sample = self._t
        self.workers.advance(self._t, 0.0)

    def advance_to(self, now: datetime) -> None:
        target = now.timestamp()
        with self._lock:
            while self._t < target:
                t = min(target, self._t + STEP_SECONDS)
                dt = t - self._t
                arrivals = demand(datetime.fromtimestamp(self._t, now.tzinfo)) * dt
                before = self.workers.backlog
                self.workers.advance(t, arrivals / dt)
                self._throughput = max(0.0, before + arrivals - self.workers.backlog) / dt
                self._t = t
                while self._next_sample <= t:
                    self._sample(self._next_sample)
                    self._next_sample += SAMPLE_SECONDS

    def _sample(self, t: float) -> None:
        at = datetime.fromtimestamp(t, DEMO_START.tzinfo)
        writes = self._throughput * WRITES_PER_MESSAGE
        values = {
            "backlog": self.workers.backlog,
            "age": self.workers.oldest_age(t),
            "cpu": self.bigtable.observe("cpu", writes, t),
        }
        for key, value in values.items():
            series = self._samples[key]
            series.append(Sample(at, value))
            del series[:-30]

    def _visible(self, key: str, now: datetime) -> tuple[Sample, ...]:
        horizon = now.timestamp() - METRIC_DELAY_SECONDS
        return tuple(s for s in self._samples[key] if s.at.timestamp() <= horizon)

    def read(self, requests: Sequence[MetricRequest], now: datetime) -> list[Observation]:
        self.advance_to(now)
        out: list[Observation] = []
        with self._lock:
            for req in requests:
                source = req.metric.source
                name = req.metric.name
                if source.pubsub is not None:
                    key = (
                        "age"
                        if source.pubsub.metric.value == "oldest_unacked_message_age"
                        else "backlog"
                    )
                    out.append(Observation(name, self._visible(key, now)))
                elif source.bigtable is not None:
                    out.append(Observation(name, self._visible("cpu", now)))
                elif source.prometheus is not None:
                    # the workers' busy ratio, as Prometheus would compute it right now
                    n = max(self.workers.count, 1)
                    busy = self._throughput / (n * WORKER_CAPACITY)
                    out.append(Observation.of(name, now, busy))
                elif source.kubernetes is not None:
                    out.append(Observation.of(name, now, float(self.workers.count)))
                else:
                    out.append(
                        Observation.failed(
                            name, "not_found", f"the demo has no {source.kind} source"
                        )
                    )
        return out

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            t = self._t
            return {
                "demand": demand(datetime.fromtimestamp(t, DEMO_START.tzinfo)),
                "backlog": self.workers.backlog,
                "workers": float(self.workers.count),
                "nodes": float(self.bigtable.count),
            }


def load_policies() -> list[ScalingPolicy]:
    from gemini import manifests

    text = resources.files("gemini.demo").joinpath("policies.yaml").read_text()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        fh.write(text)
        path = Path(fh.name)
    try:
        return manifests.load_policies(path)
    finally:
        path.unlink(missing_ok=True)


class _Printer:
    """The live log: one line per scale (or would-be scale, for Shadow policies)."""

    def record(self, decision: Decision) -> None:
        if decision.desired == decision.current:
            return
        verb = "scaled" if decision.applied else f"would scale ({decision.outcome})"
        reasons = ", ".join(decision.reasons)
        print(
            f"{iso(decision.at)}  {decision.policy:<28} {verb} {decision.current} -> "
            f"{decision.desired}  [{reasons}]",
            flush=True,
        )


class Demo:
    """Wires the pieces; `start()` / `stop()`; `port` is the HTTP port actually bound."""

    def __init__(self, *, port: int, speed: float, db_url: str | None = None) -> None:
        from gemini.controller.server import HttpServer, create_ops_app
        from gemini.controller.telemetry import Telemetry
        from gemini.dashboard.app import create_app
        from gemini.store import open_store
        from gemini.store.buffered import BufferedWriter

        self.clock = ScaledClock(DEMO_START, speed)
        self.world = DemoWorld(self.clock.now())
        self.policies = {p.key: p for p in load_policies()}
        self.states: dict[str, PolicyState] = {k: PolicyState() for k in self.policies}
        self.scaler = RoutingScaler(
            {
                "kubernetes": SimulatedScaler(self.world.workers),
                "bigtable": SimulatedScaler(self.world.bigtable),
            }
        )
        self.tmpdir: str | None = None
        if db_url is None:
            self.tmpdir = tempfile.mkdtemp(prefix="gemini-demo-")
            db_url = f"sqlite:///{self.tmpdir}/decisions.sqlite"
        self.db_url = db_url
        self.store = open_store(db_url)
        self.writer = BufferedWriter(self.store, flush_interval=0.2)
        self.sink = loop.Fanout(self.writer, _Printer())
        self.telemetry = Telemetry()
        self.evaluations = 0
        self._lock = threading.Lock()
        dashboard = create_app(self.store, title="gemini demo", writer_stats=self.writer.stats)
        ops = create_ops_app(
            self.telemetry.registry,
            ready=lambda: True,
            details=lambda: {"mode": "demo", "evaluations": self.evaluations},
            dashboard=dashboard,
        )
        self.http = HttpServer(ops, "127.0.0.1", port)
        from gemini.controller.scheduling import Scheduler

        self.scheduler = Scheduler(self.clock, self.run_batch)

    def run_batch(self, due: datetime, keys: list[str]) -> None:
        """Evaluate one due batch through the shared `tick_batch` (batched metric read)."""
        with self._lock:
            now = self.clock.now()
            items = [(self.policies[k], self.states[k]) for k in keys if k in self.policies]
            results = loop.tick_batch(
                items, reader=self.world, scaler=self.scaler, now=now, sink=self.sink
            )
            for result in results:
                self.states[result.policy] = result.state
                ns, _, name = result.policy.partition("/")
                self.telemetry.observe(ns, name, result)
            self.evaluations += len(results)

    def start(self) -> None:
        self.http.start()
        for key, policy in self.policies.items():
            self.scheduler.schedule(key, policy.spec.interval_seconds, soon=True)
        self.scheduler.start()

    @property
    def port(self) -> int:
        return self.http.port

    def stop(self) -> None:
        self.scheduler.stop(timeout=10)
        self.writer.close(timeout=10)
        self.http.stop()
        self.store.close()


def demo_command(port: int, speed: float, duration: float | None) -> int:
    if speed <= 0:
        print("--speed must be > 0", flush=True)
        return 2
    demo = Demo(port=port, speed=speed)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        demo.start()
    except RuntimeError as exc:
        print(f"gemini demo: {exc}", flush=True)
        demo.scheduler.stop(timeout=2)
        demo.writer.close(timeout=2)
        demo.store.close()
        if demo.tmpdir is not None:  # nothing was recorded: leave no empty database behind
            shutil.rmtree(demo.tmpdir, ignore_errors=True)
        return 1
    url = f"http://127.0.0.1:{demo.port}/"
    print(f"gemini demo: dashboard at {url}  (decisions in {demo.db_url})", flush=True)
    print(
        f"gemini demo: {len(demo.policies)} policies, load replayed at {speed:g}x real time "
        f"from {iso(DEMO_START)}; Ctrl-C to stop",
        flush=True,
    )
    started = time.monotonic()
    try:
        while not stop.is_set():
            if duration is not None and time.monotonic() - started >= duration:
                break
            stop.wait(0.5)
    finally:
        demo.stop()
        snap = demo.world.snapshot()
        print(
            f"gemini demo: stopped after {demo.evaluations} evaluations; workers "
            f"{snap['workers']:.0f}, Bigtable nodes {snap['nodes']:.0f}",
            flush=True,
        )
    return 0
