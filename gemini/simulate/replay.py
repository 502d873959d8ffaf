"""Replay: drive `gemini.loop.tick` (hence `engine.decide`) over a recorded series, closed loop.

Owns the step grid, the demand per step, the model-backed metric reader and the run loop. The
clock is a `ManualClock` moved one step at a time (no sleeps). There is no second implementation
of the scaling algorithm here: every decision comes from `gemini.loop.tick`.

Grid and gaps: the replay advances in steps of `stepSeconds` (default 15 s); the demand of a step
is the time-weighted mean of the trace over the step, each trace value held until the next one.
Gaps in the trace are therefore **held** (the last value continues); steps inside a gap longer
than three median sample intervals are marked and not counted as SLO violations.

Must not import `gemini.scalers` other than `gemini.scalers.simulated`, nor network libraries.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gemini import loop
from gemini.clock import ManualClock
from gemini.metrics import MetricRequest
from gemini.policy.decision import Decision
from gemini.policy.spec import Metric, ScalingPolicy
from gemini.policy.state import PolicyState
from gemini.scalers.simulated import SimulatedScaler
from gemini.series import Observation, Sample, Trace, long_gap
from gemini.simulate.models import Model, ModelSpec


@dataclass(frozen=True, slots=True)
class Grid:
    """The replay's time grid and the demand (load per second) of every step."""

    t0: float
    step: float
    demand: tuple[float, ...]
    masked: tuple[bool, ...]  # steps not scored for violations (long gaps, excluded windows)

    def __len__(self) -> int:
        return len(self.demand)

    def time(self, k: int) -> float:
        return self.t0 + k * self.step

    def split(self, fraction: float) -> tuple[Grid, Grid]:
        cut = max(1, min(len(self) - 1, int(len(self) * fraction)))
        a = Grid(self.t0, self.step, self.demand[:cut], self.masked[:cut])
        b = Grid(self.time(cut), self.step, self.demand[cut:], self.masked[cut:])
        return a, b

    def scaled(self, factor: float) -> Grid:
        """The same grid with every step's demand multiplied by `factor` (the tuner's margin)."""
        if factor == 1.0:
            return self
        return Grid(self.t0, self.step, tuple(d * factor for d in self.demand), self.masked)

    def decimated(self, factor: int) -> Grid:
        """Coarser grid (steps `factor` times longer, demand averaged): for fast tuning."""
        if factor <= 1:
            return self
        d, m = [], []
        for i in range(0, len(self.demand), factor):
            chunk = self.demand[i : i + factor]
            d.append(sum(chunk) / len(chunk))
            m.append(any(self.masked[i : i + factor]))
        return Grid(self.t0, self.step * factor, tuple(d), tuple(m))


def make_grid(
    trace: Trace,
    step: float = 15.0,
    exclude: Sequence[tuple[float, float]] = (),
    gap_spacing: float | None = None,
    max_gap: float | None = None,
) -> Grid:
    """The replay grid over `trace`. A gap longer than `max_gap` seconds (None: three median
    sample intervals of the whole trace, or of `gap_spacing`: the tuner's, of its training part
    only) is held but not scored."""
    times, values = trace.times, trace.values
    if len(times) < 2:
        raise ValueError("a trace needs at least 2 samples")
    spacing = trace.spacing()
    t0 = times[0]
    end = times[-1] + spacing
    n = max(1, math.ceil((end - t0) / step - 1e-9))
    demand: list[float] = []
    masked: list[bool] = []
    i = 0
    last = len(times) - 1
    limit = long_gap(spacing if gap_spacing is None else gap_spacing, max_gap)
    for k in range(n):
        a = t0 + k * step
        b = a + step
        while i < last and times[i + 1] <= a:
            i += 1
        if i == last or times[i + 1] >= b:
            demand.append(values[i])
            gap = times[i + 1] - times[i] if i < last else spacing
        else:
            acc = 0.0
            j = i
            pos = a
            while pos < b:
                nxt = times[j + 1] if j < last else b
                seg_end = min(nxt, b)
                acc += values[j] * (seg_end - pos)
                pos = seg_end
                if j < last and times[j + 1] <= pos:
                    j += 1
                else:
                    break
            demand.append(acc / step)
            gap = spacing
        out = gap > limit
        if not out:
            for lo, hi in exclude:
                if a < hi and b > lo:
                    out = True
                    break
        masked.append(out)
    return Grid(t0, step, tuple(demand), tuple(masked))


@dataclass(frozen=True, slots=True)
class _ReadPlan:
    metric: Metric
    name: str
    stored: str | None  # the sampled series it reads; None: no observable mapped to the metric
    derived: bool  # utilization per replica, derived from the sampled load
    offset_seconds: int
    window_seconds: int


class ModelReader:
    """`MetricReader` over a backend model: the observables sampled every `sample_seconds`,
    each visible only `delay_seconds` after its timestamp (never a sample from the future). A
    metric with `offsetSeconds` reads them as of that long ago, as `RoutingReader` does."""

    def __init__(
        self,
        model: Model,
        mapping: dict[str, str],
        *,
        delay_seconds: float = 0.0,
        sample_seconds: float = 60.0,
    ) -> None:
        self.model = model
        self.mapping = dict(mapping)  # policy metric name -> observable
        self.delay = float(delay_seconds)
        self.sample_seconds = float(sample_seconds)
        # `utilization` of pods is read like HPA reads per-pod metrics: the sampled load over the
        # replicas that exist at read time (a starting pod counts with 0 % usage), so a stale
        # sample does not compound scale-ups. Bigtable `cpu` is the measured (sampled) value.
        self._per_replica = model.kind != "bigtable"
        names = sorted({"load" if self._derived(n) else n for n in self.mapping.values()})
        self._names = names
        self._times: dict[str, list[float]] = {n: [] for n in names}
        self._samples: dict[str, list[Sample]] = {n: [] for n in names}
        self._visible: dict[str, int] = dict.fromkeys(names, 0)
        self._cache: dict[tuple[str, int, int, int], Observation] = {}
        self._moved_samples: dict[tuple[str, int], list[Sample]] = {}
        self._next_sample: float | None = None
        self._plans: dict[int, _ReadPlan] = {}

    def _plan(self, metric: Metric) -> _ReadPlan:
        """What `read` needs from a metric, looked up once per metric object (the spec's
        attributes are pydantic's, slow to read on every tick)."""
        plan = self._plans.get(id(metric))
        if plan is None or plan.metric is not metric:
            observable = self.mapping.get(metric.name)
            derived = observable is not None and self._derived(observable)
            plan = _ReadPlan(
                metric,
                metric.name,
                "load" if derived else observable,
                derived,
                metric.offset_seconds,
                metric.window_seconds,
            )
            if len(self._plans) > 1024:
                self._plans.clear()
            self._plans[id(metric)] = plan
        return plan

    def _moved(self, stored: str, offset: int, upto: int) -> list[Sample]:
        """The samples of `stored` moved forward by `offset`, at least the first `upto` of them
        (built once each: a window slides over them every read)."""
        moved = self._moved_samples.setdefault((stored, offset), [])
        if len(moved) < upto:
            by = timedelta(seconds=offset)
            moved += [Sample(s.at + by, s.value) for s in self._samples[stored][len(moved) : upto]]
        return moved

    def _derived(self, name: str) -> bool:
        return name == "utilization" and self._per_replica

    def sample(self, t: float, load: float) -> None:
        """Record the observables at `t` if a sample is due."""
        nxt = self._next_sample
        if nxt is not None and t < nxt:
            return
        every = self.sample_seconds
        nxt = (t if nxt is None else nxt) + every
        if nxt <= t:
            # a step longer than the sampling interval: skip the samples in between at once
            # (one at a time took step / sampleSeconds iterations every step)
            nxt += math.floor((t - nxt) / every + 1.0) * every
            if nxt <= t:  # (float rounding)
                nxt += every
        self._next_sample = nxt
        at = datetime.fromtimestamp(t, UTC)
        model = self.model
        for name in self._names:
            self._times[name].append(t)
            self._samples[name].append(Sample(at, model.observe(name, load, t)))

    def read(self, requests: Sequence[MetricRequest], now: datetime) -> list[Observation]:
        nowt = now.timestamp()
        horizon = nowt - self.delay
        out: list[Observation] = []
        for req in requests:
            plan = self._plan(req.metric)
            name = plan.name
            stored = plan.stored
            if stored is None:
                out.append(Observation.failed(name, "not_found", "no observable mapped"))
                continue
            derived, offset = plan.derived, plan.offset_seconds
            times = self._times[stored]
            if offset:
                # read as of `offset` ago (RoutingReader's rule), samples moved forward by it; a
                # sample that old has long been visible, so the delay counts only if longer
                vis = bisect.bisect_right(times, nowt - max(offset, self.delay))
            else:
                vis = self._visible[stored]
                while vis < len(times) and times[vis] <= horizon:
                    vis += 1
                self._visible[stored] = vis
            if vis == 0:
                out.append(Observation.failed(name, "empty", "no sample visible yet"))
                continue
            w = plan.window_seconds
            lo = (
                vis - 1
                if w <= 0
                else min(vis - 1, bisect.bisect_right(times, nowt - offset - w, 0, vis))
            )
            count = self.model.count if derived else -1
            key = (name, lo, vis, count)
            obs = self._cache.get(key)
            if obs is None:
                if len(self._cache) > 64:
                    self._cache.clear()
                if offset and not derived:
                    samples = self._moved(stored, offset, vis)[lo:vis]
                else:
                    samples = self._samples[stored][lo:vis]
                if derived:
                    per = max(count, 1) * self.model.capacity_per_replica
                    if offset:
                        by = timedelta(seconds=offset)
                        samples = [Sample(s.at + by, s.value / per) for s in samples]
                    else:
                        samples = [Sample(s.at, s.value / per) for s in samples]
                obs = Observation(name, tuple(samples))
                self._cache[key] = obs
            out.append(obs)
        return out


# how many steps a replay runs between two calls of its `progress` callback
PROGRESS_STEPS = 4096


@dataclass(slots=True)
class Run:
    """The per-step record of one replay (or baseline), ready for scoring and charts."""

    name: str
    kind: str  # policy | baseline
    grid: Grid
    count: list[int]
    ready_capacity: list[float]
    age: list[float] | None = None
    events: list[tuple[float, int]] = field(default_factory=list)  # (time, signed change)
    decisions: list[Decision] = field(default_factory=list)  # changes only (for the report)


class _ListSink:
    def __init__(self, keep_all: Callable[[Decision], None] | None) -> None:
        self.keep_all = keep_all
        self.changes: list[Decision] = []

    def record(self, decision: Decision) -> None:
        if self.keep_all is not None:
            self.keep_all(decision)
        if decision.desired != decision.current:
            self.changes.append(decision)


def replay(
    policy: ScalingPolicy,
    grid: Grid,
    model_spec: ModelSpec,
    mapping: dict[str, str],
    *,
    delay_seconds: float = 0.0,
    sample_seconds: float = 60.0,
    initial: int | None = None,
    on_decision: Callable[[Decision], None] | None = None,
    kind: str = "policy",
    name: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Run:
    """Run one policy over the grid through `gemini.loop.tick`, closed loop. `progress` is
    called every PROGRESS_STEPS steps and at the end, with the steps replayed since its
    previous call."""
    model = model_spec.build(initial)
    scaler = SimulatedScaler(model)
    reader = ModelReader(model, mapping, delay_seconds=delay_seconds, sample_seconds=sample_seconds)
    sink = _ListSink(on_decision)
    step = grid.step
    every = max(1, round(policy.spec.interval_seconds / step))
    clock = ManualClock(datetime.fromtimestamp(grid.t0, UTC))
    state = PolicyState()
    n = len(grid)
    count: list[int] = [0] * n
    ready_cap: list[float] = [0.0] * n
    is_queue = model_spec.kind == "queue"
    age: list[float] | None = [0.0] * n if is_queue else None
    events: list[tuple[float, int]] = []
    demand = grid.demand
    t0 = grid.t0
    tick = loop.tick
    prev_load = demand[0]
    current = model.count
    advance, sample, ready_capacity = model.advance, reader.sample, model.ready_capacity
    set_clock, fromtimestamp = clock.set, datetime.fromtimestamp
    chunk = max(n, 1) if progress is None else PROGRESS_STEPS
    for first in range(0, n, chunk):
        last = min(n, first + chunk)
        for k in range(first, last):
            t = t0 + k * step
            load = demand[k]
            advance(t, prev_load)
            sample(t, load)
            if k % every == 0:
                now = fromtimestamp(t, UTC)
                set_clock(now)
                state = tick(policy, state, reader=reader, scaler=scaler, now=now, sink=sink).state
                after = model.count
                if after != current:
                    events.append((t, after - current))
                    current = after
            count[k] = current
            ready_cap[k] = ready_capacity(t)
            if age is not None:
                age[k] = model.observe("oldestUnackedAgeSeconds", load, t)
            prev_load = load
        if progress is not None:
            progress(last - first)
    return Run(
        name or policy.metadata.name,
        kind,
        grid,
        count,
        ready_cap,
        age,
        events,
        sink.changes,
    )
