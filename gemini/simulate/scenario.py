"""Scenario files (`simulations/*.yaml`): pydantic models at the trust boundary and loading.

Owns validation with field-named errors (`backend.capacityPerReplica: must be > 0`), resolving
paths relative to the scenario file, reading the trace and turning it into demand (load per
second), and the policies (file paths or inline manifests). Must not import `gemini.metrics`,
`gemini.scalers` or network libraries.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from gemini.clock import parse_iso, utc
from gemini.errors import SpecError
from gemini.manifests import load_yaml
from gemini.policy.spec import MAX_REPLICAS, ScalingPolicy, format_path, parse_policy
from gemini.series import Trace, long_gap, read_trace
from gemini.simulate.models import OBSERVABLES, PRODUCES, ModelSpec

DEFAULT_STEP = 15.0
# without `stepSeconds`, a trace longer than this many 15 s steps (174 days) is replayed at the
# smallest multiple of 15 s that keeps it within: a 6-year hourly trace at 15 s is 12 million
# steps (20 minutes, 3 GB), where 1 million take about a minute
AUTO_MAX_STEPS = 1_000_000
# beyond this many steps a replay would run for hours
MAX_STEPS = 20_000_000
MAX_STEP = 3600.0  # stepSeconds' upper limit
# replicas (or nodes) the oracle may need at the peak: beyond, counts lose whole units in floats
MAX_UNITS = 1e15
# trace timestamps: the engine looks back days and cron searches look ahead a year; within
# these every date computed stays inside Python's datetime range
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


Baseline = Literal["oracle", "static-peak", "hpa-default"]
BASELINE_NAMES: tuple[Baseline, ...] = ("oracle", "static-peak", "hpa-default")


class _M(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True
    )

    @field_validator("*", mode="before")
    @classmethod
    def _not_nan(cls, value: Any) -> Any:
        # `.nan` is never meant (and fails range checks with a misleading "must be <= 1")
        if isinstance(value, float) and math.isnan(value):
            raise ValueError("must be a number, not NaN")
        return value


class _Finite(_M):
    # no .inf / .nan: an infinite capacity, start-up, sampling interval or step replays to
    # nonsense (elsewhere .inf can mean "no limit": clipAbove, maxAgeSeconds, the SLO budget)
    model_config = ConfigDict(allow_inf_nan=False)


def _as_utc(value: datetime | None) -> datetime | None:
    """A timestamp without an offset is UTC (as in trace files), never the machine's zone."""
    if value is None:
        return None
    try:
        return utc(value)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from None


class Window(_M):
    start: datetime
    end: datetime

    _utc = field_validator("start", "end")(_as_utc)

    @model_validator(mode="after")
    def _order(self) -> Window:
        if self.start > self.end:
            raise ValueError(f"start {self.start.isoformat()} is after end")
        return self


class TraceSpec(_M):
    file: str = Field(..., min_length=1)
    kind: Literal["demand", "utilization"] = "demand"
    scale: float = Field(1.0, gt=0)
    recorded_replicas: float | None = Field(None, gt=0)
    utilization_unit: Literal["auto", "fraction", "percent"] = "auto"
    start: datetime | None = None
    end: datetime | None = None
    clip_above: float | None = Field(None, gt=0)
    exclude: list[Window] = Field(default_factory=list)
    # a gap between two samples longer than this is held but not scored (`.inf`: every gap
    # is scored); None: three median sample intervals
    max_gap_seconds: float | None = Field(None, gt=0)

    _utc = field_validator("start", "end")(_as_utc)

    @model_validator(mode="after")
    def _check(self) -> TraceSpec:
        if self.kind == "utilization" and self.recorded_replicas is None:
            # raised with its own location, so that the problem is trace.recordedReplicas
            # (a ValueError here would be reported under `trace`)
            what = "required when kind is utilization (the size of the recorded fleet)"
            raise ValidationError.from_exception_data(
                "TraceSpec",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("required_for_kind", what),
                        loc=("recordedReplicas",),
                        input=None,
                    )
                ],
            )
        return self


class BackendSpec(_Finite):
    kind: Literal["deployment", "queue", "bigtable"]
    capacity_per_replica: float = Field(..., gt=0)
    startup_seconds: float = Field(0.0, ge=0)
    initial_replicas: int = Field(1, ge=0)
    rebalance_seconds: float = Field(1200.0, ge=0)
    storage_tb: float = Field(0.0, ge=0)
    storage_per_node_tb: float = Field(5.0, gt=0)
    storage_target: float = Field(0.7, gt=0, le=1)
    initial_backlog: float = Field(0.0, ge=0)
    price_per_replica_hour: float | None = Field(None, ge=0)


class SloSpec(_M):
    max_utilization: float = Field(0.9, gt=0, le=1)
    max_age_seconds: float | None = Field(None, gt=0)


class MetricsSpec(_Finite):
    delay_seconds: float = Field(0.0, ge=0)
    # a millisecond at least: finer steps vanish in the float seconds of a real date
    sample_seconds: float = Field(60.0, ge=0.001)


class Range(_Finite):
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _order(self) -> Range:
        if not self.low <= self.high:
            raise ValueError(f"low {self.low} must not exceed high {self.high}")
        return self


class TuneSpec(_M):
    train_fraction: float = Field(0.7, gt=0, lt=1)
    # violation minutes a trial may have on the training demand x (1 + demand_margin)
    slo_budget_minutes: float | None = Field(None, ge=0)
    # default budget: hpa-default's violation minutes on that same demand x this; below 1
    # leaves a margin so the held-back part, which the search never sees, stays within
    # hpa-default's (a fitted target sits on the budget: at 1 the held-back part lands on
    # either side of hpa-default's by chance)
    slo_budget_factor: float = Field(0.9, gt=0, le=1)
    # trials are replayed on the training demand x (1 + this): a policy must keep the budget
    # with this much more load than it was tuned on, so it does not sit on the edge of the
    # training part (which the held-back part will cross)
    demand_margin: float = Field(0.05, ge=0, le=1)
    # each trial's first-metric target is fitted by a line search (the highest target whose
    # violations keep the budget) and the sampler searches the other parameters: every trial
    # then sits on the budget, and trials compare by cost alone
    fit_target: bool = True
    # search `floorFactor` too: a floor for each half hour of the UTC day, learned from the
    # training part (the median day's highest oracle count in that half hour, x the factor),
    # written into the manifest as cron `schedules` (tuner.DailyProfile)
    daily_floor: bool = False
    space: dict[str, Range] = Field(default_factory=dict)
    decimate: int = Field(1, ge=1)
    max_days: float | None = Field(None, gt=0)


class ScenarioSpec(_M):
    name: str = Field(..., min_length=1)
    trace: TraceSpec
    backend: BackendSpec
    slo: SloSpec = Field(default_factory=SloSpec)
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    observe: dict[str, str] = Field(default_factory=dict)
    policies: list[str | dict[str, Any]] = Field(default_factory=list)
    baselines: list[Baseline] = Field(default_factory=lambda: list(BASELINE_NAMES))
    flap_window_seconds: float = Field(600.0, gt=0)
    # None: 15 s (HPA's sync period), coarser for traces so long that 15 s steps would be more
    # than AUTO_MAX_STEPS (`replay_step`)
    step_seconds: float | None = Field(None, ge=0.001, le=MAX_STEP)
    max_replicas: int | None = Field(None, ge=1, le=MAX_REPLICAS)
    tune: TuneSpec = Field(default_factory=TuneSpec)

    @field_validator("policies", mode="before")
    @classmethod
    def _no_policies(cls, value: Any) -> Any:
        return [] if value is None else value  # `policies:` with nothing under it: baselines only

    @field_validator("baselines")
    @classmethod
    def _once(cls, value: list[Baseline]) -> list[Baseline]:
        twice = sorted({b for b in value if value.count(b) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} listed more than once")
        return value

    @model_validator(mode="after")
    def _observables(self) -> ScenarioSpec:
        for name, what in self.observe.items():
            if what not in OBSERVABLES:
                raise ValueError(
                    f"observe.{name}: unknown observable {what!r}; known: {', '.join(OBSERVABLES)}"
                )
        return self


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "greater_than":
        return f"must be > {ctx.get('gt')}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le')}"
    if kind == "less_than":
        return f"must be < {ctx.get('lt')}"
    if kind == "finite_number":
        return "must be a finite number"
    if kind == "literal_error":
        return (
            f"got {err.get('input')!r}; expected {ctx.get('expected', 'one of the known values')}"
        )
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


@dataclass(frozen=True, slots=True)
class Scenario:
    """A loaded, validated scenario."""

    spec: ScenarioSpec
    path: Path
    trace: Trace  # demand: load per second (after scale, kind, clip, start/end)
    policies: tuple[ScalingPolicy, ...]
    model: ModelSpec
    exclude: tuple[tuple[float, float], ...]
    step: float = DEFAULT_STEP  # the replay grid's step (`replay_step`)
    notes: tuple[str, ...] = ()  # worth telling the user (a step chosen for them)

    @property
    def name(self) -> str:
        return self.spec.name


def replay_step(spec: ScenarioSpec, trace: Trace) -> tuple[float, str | None]:
    """The replay grid's step: `stepSeconds`, else 15 s, else (a trace of more than
    AUTO_MAX_STEPS 15 s steps) the smallest multiple of 15 s within that, at most MAX_STEP; with
    a note for the user when it is not 15 s. SpecError when the step makes more than MAX_STEPS
    steps. Steps are counted as the grid does: to one median interval past the last sample."""
    span = trace.times[-1] + trace.spacing() - trace.times[0]
    note = None
    step = spec.step_seconds
    if step is None:
        step = DEFAULT_STEP
        if span / DEFAULT_STEP > AUTO_MAX_STEPS:
            step = min(DEFAULT_STEP * math.ceil(span / (DEFAULT_STEP * AUTO_MAX_STEPS)), MAX_STEP)
            note = (
                f"stepSeconds not set: the trace's {span / 86400:,.0f} days at 15 s would be "
                f"{span / DEFAULT_STEP:,.0f} steps; replaying at {step:g} s steps "
                "(set stepSeconds to choose)"
            )
    steps = span / step
    if steps > MAX_STEPS:
        raise SpecError(
            f"stepSeconds: {steps:,.0f} steps",
            [
                (
                    "stepSeconds",
                    f"{step:g} s over the trace's {span / 86400:,.1f} days is {steps:,.0f} "
                    f"steps, more than {MAX_STEPS:,}: use a larger step or a shorter span "
                    "(trace.start / trace.end)",
                )
            ],
        )
    return step, note


def parse_scenario(doc: Any) -> ScenarioSpec:
    if not isinstance(doc, dict):
        raise SpecError("scenario must be a mapping", [("", "scenario must be a mapping")])
    try:
        return ScenarioSpec.model_validate(doc)
    except ValidationError as exc:
        found: list[tuple[str, str]] = []
        for e in exc.errors():
            loc = list(e["loc"])
            if len(loc) == 3 and loc[0] == "policies" and isinstance(loc[1], int):
                # an item that is neither member of `str | dict`: one problem, not one a member
                problem = (format_path(loc[:2]), "must be a policy file path or an inline manifest")
                if problem not in found:
                    found.append(problem)
                continue
            loc = [p for p in loc if not (isinstance(p, str) and "[" in p)]
            found.append((format_path(loc), _message(dict(e))))
        raise SpecError("; ".join(f"{p}: {m}" for p, m in found), found) from None


def demand_trace(raw: Trace, spec: ScenarioSpec) -> Trace:
    t = spec.trace
    factor = t.scale
    if t.kind == "utilization":
        assert t.recorded_replicas is not None
        factor *= t.recorded_replicas * spec.backend.capacity_per_replica
        unit = t.utilization_unit
        if unit == "auto":
            # CloudWatch-style CPU traces are percentages: with no scale given and values far
            # above 1, read them as percent (utilizationUnit: fraction turns this off). Decided
            # on the whole file, before start/end: an idle window of a percent trace is still
            # percent
            big = max(raw.values, default=0.0) * t.scale > 2.0
            unit = "percent" if big and t.scale == 1.0 else "fraction"
        if unit == "percent":
            factor /= 100.0
    if t.start is not None or t.end is not None:
        raw = raw.sliced(
            t.start.timestamp() if t.start else None, t.end.timestamp() if t.end else None
        )
    values = [v * factor for v in raw.values]
    if not all(math.isfinite(v) for v in values):
        raise SpecError(
            "trace.scale: scaled values overflow",
            [("trace.scale", f"values x {factor:g} are too large to represent (overflow)")],
        )
    if t.clip_above is not None:
        cap = t.clip_above
        values = [min(v, cap) for v in values]
    return Trace(raw.times, tuple(max(0.0, v) for v in values))


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file. Raises SpecError naming every bad field."""
    p = Path(path)
    try:
        doc = load_yaml(p.read_text())
    except OSError as exc:
        raise SpecError(f"{p}: cannot read: {exc}", [("", f"cannot read file: {exc}")]) from None
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        raise SpecError(
            f"{p}: cannot read: {reason}", [("", f"cannot read file: {reason}")]
        ) from None
    except yaml.YAMLError as exc:
        # one line: where and what (str(exc) repeats the text with a caret under it)
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(
            f"{p}: invalid YAML{where}: {problem}", [("", f"invalid YAML{where}: {problem}")]
        ) from None
    spec = parse_scenario(doc)
    return build_scenario(spec, p)


def build_scenario(spec: ScenarioSpec, path: Path) -> Scenario:
    base = path.resolve().parent
    trace_file = Path(spec.trace.file)
    if not trace_file.is_absolute():
        trace_file = base / trace_file
    if not trace_file.exists():
        raise SpecError(
            f"trace.file: no such file {trace_file}",
            [("trace.file", f"no such file: {trace_file}")],
        )
    try:
        raw = read_trace(trace_file, nonnegative=True)
    except SpecError as exc:
        raise SpecError(
            f"trace.file: {exc}", [(f"trace.file: {p}", m) for p, m in exc.problems]
        ) from None
    except Exception as exc:  # unreadable: a directory, a broken Parquet file, missing columns
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(
            f"trace.file: cannot read {trace_file}: {first}",
            [("trace.file", f"cannot read {trace_file} as a timestamp,value trace: {first}")],
        ) from None
    trace = demand_trace(raw, spec)
    if len(trace) < 2:
        raise SpecError(
            "trace: fewer than 2 samples in the selected span",
            [("trace", "fewer than 2 samples in the selected span (check start/end)")],
        )
    begins, ends = trace.times[0], trace.times[-1]
    if begins < EARLIEST.timestamp() or ends > LATEST.timestamp():
        at = begins if begins < EARLIEST.timestamp() else ends
        when = datetime.fromtimestamp(at, UTC).isoformat()
        raise SpecError(
            f"trace.file: timestamp {when} out of range",
            [
                (
                    "trace.file",
                    f"timestamp {when}: the simulator replays dates from 1900 to 9000 "
                    "(trace.start / trace.end select a span)",
                )
            ],
        )
    peak = max(trace.values)
    usable = spec.backend.capacity_per_replica * spec.slo.max_utilization
    needed = peak / usable if usable > 0 else math.inf  # (the product can underflow to 0)
    if not needed <= MAX_UNITS:
        raise SpecError(
            "backend.capacityPerReplica: the peak needs too many replicas",
            [
                (
                    "backend.capacityPerReplica",
                    f"the trace's peak load {peak:g}/s needs {needed:.3g} replicas of "
                    f"{spec.backend.capacity_per_replica:g} at maxUtilization "
                    f"{spec.slo.max_utilization:g}, more than {MAX_UNITS:.0e}: check it and "
                    "trace.scale",
                )
            ],
        )
    step, note = replay_step(spec, trace)
    policies: list[ScalingPolicy] = []
    problems: list[tuple[str, str]] = []
    for i, item in enumerate(spec.policies):
        where = f"policies[{i}]"
        if isinstance(item, str):
            from gemini.manifests import load_policies

            pf = Path(item)
            if not pf.is_absolute():
                pf = base / pf
            if not pf.exists():
                problems.append((where, f"no such policy file: {pf}"))
                continue
            try:
                found = load_policies(pf)
            except SpecError as exc:
                problems.extend((f"{where}: {q}" if q else where, m) for q, m in exc.problems)
                continue
            if not found:
                problems.append(
                    (where, f"no ScalingPolicy in {pf} (documents of other kinds are skipped)")
                )
            policies.extend(found)
        else:
            try:
                policies.append(parse_policy(item))
            except SpecError as exc:
                problems.extend((f"{where}.{q}" if q else where, m) for q, m in exc.problems)
    names = [p.metadata.name for p in policies]
    for n in set(names):
        if names.count(n) > 1:
            problems.append(("policies", f"two policies are named {n!r}"))
    for n in sorted(set(names) & set(spec.baselines)):
        problems.append(("policies", f"a policy named {n!r} would be confused with the baseline"))
    if not policies and "hpa-default" not in spec.baselines:
        problems.append(("policies", "no policies and no hpa-default baseline: nothing to run"))
    for pol in policies:
        for j, m in enumerate(pol.spec.metrics):
            try:
                what = observable_for(spec, m)
                produced = PRODUCES[spec.backend.kind]
                if what not in produced:
                    where = f"observe.{m.name}" if m.name in spec.observe else "source"
                    problems.append(
                        (
                            f"{pol.metadata.name}: spec.metrics[{j}]",
                            f"reads {what!r} ({where}), which a {spec.backend.kind} backend "
                            f"does not produce; it produces: {', '.join(produced)}",
                        )
                    )
                elif m.offset_seconds and what in ("utilization", "cpu", "storage"):
                    # yesterday's fraction over today's fleet means nothing (spec.py refuses
                    # the targets that would read one; the mapping can still pick one)
                    where = f"observe.{m.name}" if m.name in spec.observe else "source"
                    problems.append(
                        (
                            f"{pol.metadata.name}: spec.metrics[{j}]",
                            f"reads {what!r} ({where}) with offsetSeconds; a metric read from "
                            "another time must be a total (load, backlog), not a fraction",
                        )
                    )
            except SpecError as exc:
                problems.extend(
                    (f"{pol.metadata.name}: spec.metrics[{j}]: {q}", msg) for q, msg in exc.problems
                )
        if spec.backend.kind == "bigtable" and pol.spec.target.bigtable is None:
            problems.append(
                (f"{pol.metadata.name}: spec.target", "backend bigtable needs a bigtable target")
            )
    # an entry for no metric is a typo (the metric then reads what its source implies); checked
    # once the policies loaded, and only when there are policies (baselines-only runs ignore it)
    metric_names = {m.name for pol in policies for m in pol.spec.metrics}
    if policies and not problems:
        for name in spec.observe:
            if name not in metric_names:
                problems.append(
                    (
                        f"observe.{name}",
                        f"no policy has a metric named {name!r} "
                        f"(metrics: {', '.join(sorted(metric_names))})",
                    )
                )
    if problems:
        raise SpecError("; ".join(f"{q}: {m}" for q, m in problems), problems)
    b = spec.backend
    model = ModelSpec(
        kind=b.kind,
        capacity_per_replica=b.capacity_per_replica,
        startup_seconds=b.startup_seconds,
        initial=b.initial_replicas,
        rebalance_seconds=b.rebalance_seconds,
        storage_tb=b.storage_tb,
        storage_per_node_tb=b.storage_per_node_tb,
        storage_target=b.storage_target,
        initial_backlog=b.initial_backlog,
    )
    exclude = tuple((w.start.timestamp(), w.end.timestamp()) for w in spec.trace.exclude)
    notes = [note] if note else []
    if spec.slo.max_age_seconds is not None and b.kind != "queue":
        notes.append(
            f"slo.maxAgeSeconds is ignored: only a queue backend has messages to age "
            f"(this one is {b.kind})"
        )
    gaps = gap_note(trace, spec.trace.max_gap_seconds)
    if gaps:
        notes.append(gaps)
    if (
        b.initial_replicas == 0
        and b.kind != "bigtable"  # (a Bigtable cluster has one node at least)
        and ("hpa-default" in spec.baselines or any(p.spec.min_replicas > 0 for p in policies))
    ):
        notes.append(
            "backend.initialReplicas is 0: hpa-default and policies with minReplicas > 0 start "
            "at 1 replica (HPA leaves a workload scaled to 0 by hand alone; a replay from 0 "
            "would never scale)"
        )
    return Scenario(spec, path, trace, tuple(policies), model, exclude, step, tuple(notes))


def gap_note(trace: Trace, max_gap: float | None) -> str | None:
    """What the trace's long gaps leave unscored, for the user (None: no long gap). A gap is
    held either way; `make_grid` masks the steps inside one from scoring."""
    spacing = trace.spacing()
    limit = long_gap(spacing, max_gap)
    gaps = [b - a for a, b in itertools.pairwise(trace.times) if b - a > limit]
    if not gaps:
        return None
    span = trace.times[-1] + spacing - trace.times[0]
    held = sum(gaps)
    what = (
        f"trace.maxGapSeconds {max_gap:g}"
        if max_gap is not None
        else f"three median sample intervals ({limit:g} s; trace.maxGapSeconds sets the limit)"
    )
    return (
        f"{len(gaps):,} gap{'s' if len(gaps) > 1 else ''} between samples longer than {what} "
        f"cover {held / 3600:,.1f} h, {held / span:.1%} of the trace: the last value is held "
        "there, and those steps are not scored (no violations; the oracle holds the floor)"
    )


def observable_for(spec: ScenarioSpec, metric: Any) -> str:
    """The model observable a policy metric reads: `observe:` first, else implied by the source
    (pubsub -> backlog / oldestUnackedAgeSeconds, bigtable -> cpu / storage), else by the target
    type (Utilization -> utilization, AverageValue / Value -> load)."""
    name = metric.name
    if name in spec.observe:
        return spec.observe[name]
    src = metric.source
    if src.pubsub is not None:
        age = src.pubsub.metric.value == "oldest_unacked_message_age"
        return "oldestUnackedAgeSeconds" if age else "backlog"
    if src.bigtable is not None:
        return "storage" if src.bigtable.metric.value == "storage_utilization" else "cpu"
    target = metric.target
    if target is not None:
        return "utilization" if target.type.value == "Utilization" else "load"
    raise SpecError(
        f"observe.{name}: cannot infer the observable",
        [(f"observe.{name}", "cannot infer what this metric reads; add it to observe:")],
    )


def parse_time(text: str) -> float:
    return parse_iso(text).timestamp()


def finite(x: float) -> bool:
    return math.isfinite(x)
