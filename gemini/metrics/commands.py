"""The `gemini metrics` and `gemini record` commands (the shell around the metric sources).

`metrics`: read every metric of every policy in a file once, through the same batched reader the
controller uses; print value, sample time, age and status per metric. `record`: export a Cloud
Monitoring series to the trace format. Must not import `gemini.scalers` (nor `gemini.loop`,
which does).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from gemini.clock import SystemClock, iso, span
from gemini.errors import SpecError
from gemini.metrics import MetricRequest, RoutingReader
from gemini.policy.spec import Aligner, Metric, Reducer, ScalingPolicy
from gemini.series import Observation, write_trace


def _err(line: str) -> None:
    print(line, file=sys.stderr)


def _load(path: Path) -> list[ScalingPolicy] | None:
    from gemini import manifests

    try:
        policies = manifests.load_policies(path)
    except SpecError as exc:
        for where, message in exc.problems:
            _err(f"{path}: {where}: {message}" if where else f"{path}: {message}")
        return None
    if not policies:
        _err(f"{path}: no ScalingPolicy document in file")
        return None
    return policies


def requests_for(policies: Sequence[ScalingPolicy]) -> list[MetricRequest]:
    return [MetricRequest(p.key, p.metadata.namespace, m) for p in policies for m in p.spec.metrics]


def status_of(metric: Metric, obs: Observation, now: datetime) -> str:
    """ok | stale (older than maxAgeSeconds) | missing (no data) | error (the read failed)."""
    if obs.error is not None:
        return "missing" if obs.error_kind == "empty" else "error"
    latest = obs.latest
    if latest is None:
        return "missing"
    age = (now - latest.at).total_seconds()
    if metric.max_age_seconds is not None and age > metric.max_age_seconds:
        return "stale"
    return "ok"


def row(request: MetricRequest, obs: Observation, now: datetime) -> dict[str, Any]:
    latest = obs.latest if obs.error is None else None
    return {
        "policy": request.policy,
        "name": request.metric.name,
        "source": request.metric.source.kind,
        "value": latest.value if latest is not None else None,
        "sampleTime": iso(latest.at) if latest is not None else None,
        "ageSeconds": round((now - latest.at).total_seconds(), 3) if latest is not None else None,
        "samples": len(obs.samples),
        "status": status_of(request.metric, obs, now),
        "errorKind": obs.error_kind,
        "error": obs.error,
        # a metric read from the past (`offsetSeconds`): its sample time and age are the moved
        # ones, the value is from that much earlier
        "offsetSeconds": request.metric.offset_seconds,
    }


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}"


def metrics_command(policy: Path, as_json: bool) -> int:
    """Exit 0 when the file is valid (each metric's status says whether its read worked);
    exit 1 when the file is invalid."""
    policies = _load(policy)
    if policies is None:
        return 1
    requests = requests_for(policies)
    now = SystemClock().now()
    reader = RoutingReader()
    try:
        observations = reader.read(requests, now)
    finally:
        reader.close()
    rows = [row(r, o, now) for r, o in zip(requests, observations, strict=True)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ("POLICY", "METRIC", "SOURCE", "VALUE", "SAMPLE TIME", "AGE S", "STATUS")
    table = [header] + [
        (
            r["policy"],
            r["name"] + (f" ({span(r['offsetSeconds'])} back)" if r["offsetSeconds"] else ""),
            r["source"],
            _fmt(r["value"]),
            r["sampleTime"] or "-",
            _fmt(r["ageSeconds"]),
            r["status"]
            if r["error"] is None
            else f"{r['status']} ({r['errorKind']}): {r['error']}",
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header) - 1)]
    for line in table:
        cells = [str(c).ljust(w) for c, w in zip(line, widths, strict=False)]
        print("  ".join([*cells, str(line[-1])]))
    return 0


def _policy_query(policy: Path, metric_name: str | None) -> Any:
    """The SeriesQuery of a policy's Cloud Monitoring / Pub/Sub / Bigtable metric, or None."""
    from gemini.metrics import bigtable, cloud_monitoring, pubsub

    policies = _load(policy)
    if policies is None:
        return None
    candidates = [
        MetricRequest(p.key, p.metadata.namespace, m)
        for p in policies
        for m in p.spec.metrics
        if metric_name is None or m.name == metric_name
    ]
    if not candidates:
        _err(f"{policy}: no metric named {metric_name!r}")
        return None
    if metric_name is None and len(candidates) > 1:
        names = ", ".join(sorted({c.metric.name for c in candidates}))
        _err(f"{policy}: several metrics ({names}); choose one with --metric")
        return None
    req = candidates[0]
    sources: dict[str, Any] = {
        "cloudMonitoring": cloud_monitoring.CloudMonitoringSource,
        "pubsub": pubsub.PubsubSource,
        "bigtable": bigtable.BigtableSource,
    }
    kind = req.metric.source.kind
    if kind not in sources:
        _err(
            f"{policy}: metric {req.metric.name!r} reads source {kind}; gemini record exports "
            "Cloud Monitoring series (cloudMonitoring, pubsub, bigtable)"
        )
        return None
    return sources[kind]().query(req)  # clients are created lazily: no call here


def record_command(
    *,
    policy: Path | None,
    metric_name: str | None,
    project: str | None,
    filter_: str | None,
    aligner: str,
    reducer: str,
    period: int,
    days: float,
    output: Path,
) -> int:
    """Export `days` of a series to a CSV trace. Exit 1 on bad input or a failed read."""
    import dataclasses

    from gemini.metrics.cloud_monitoring import MonitoringReader, SeriesQuery

    if not (days > 0 and math.isfinite(days)):
        _err(f"--days: must be a positive number of days, got {days}")
        return 1
    if period < 60:
        _err(f"--alignment-period: Cloud Monitoring's minimum is 60 seconds, got {period}")
        return 1
    lookback = round(days * 86400)
    if policy is not None:
        if project is not None or filter_ is not None:
            _err("give either --policy [--metric] or --project with --filter, not both")
            return 1
        query = _policy_query(policy, metric_name)
        if query is None:
            return 1
        query = dataclasses.replace(query, lookback_seconds=lookback)
    else:
        if project is None or filter_ is None:
            _err("give --policy [--metric], or --project and --filter")
            return 1
        try:
            aligner = Aligner(aligner).value
        except ValueError:
            _err(f"--aligner: unknown aligner {aligner!r}; one of {', '.join(Aligner)}")
            return 1
        try:
            reducer = Reducer(reducer).value
        except ValueError:
            _err(f"--reducer: unknown reducer {reducer!r}; one of {', '.join(Reducer)}")
            return 1
        query = SeriesQuery(
            name="record",
            project=project,
            filter=filter_,
            aligner=aligner,
            reducer=reducer,
            alignment_period_seconds=period,
            lookback_seconds=lookback,
        )
    reader = MonitoringReader(timeout_seconds=120.0)
    [obs] = reader.read([query], SystemClock().now())
    if obs.error is not None:
        _err(f"reading {query.project}: {obs.error_kind}: {obs.error}")
        return 1
    try:
        write_trace(output, obs.samples)
    except OSError as exc:
        _err(f"{output}: cannot write: {exc.strerror or exc}")
        return 1
    first, last = obs.samples[0].at, obs.samples[-1].at
    print(f"wrote {len(obs.samples)} samples ({iso(first)} .. {iso(last)}) to {output}")
    return 0
