"""An in-process `google.monitoring.v3.MetricService` gRPC server on 127.0.0.1 for tests.

Built from the protobuf message classes that google-cloud-monitoring ships (the package has no
`*_pb2_grpc` servicer, so the RPC is registered with a generic handler under its real full name
`/google.monitoring.v3.MetricService/ListTimeSeries`). The real `MetricServiceClient` talks to it
over a plaintext channel.

It holds time series (seeded from Python with `add_series`), logs every request, pages by series
(`page_size` / `next_page_token`), evaluates the filter subset gemini emits (`a = "x"`,
`a = one_of("x", "y")`, joined by AND), applies a cross-series reducer grouped by
`group_by_fields`, and can fail or delay calls on demand. Stored points are treated as already
aligned: the per-series aligner is recorded in the log but not applied.

Imports nothing from gemini.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import grpc
from google.api import metric_pb2
from google.cloud.monitoring_v3.types import common, metric_service
from google.cloud.monitoring_v3.types import metric as metric_types

ListRequest: Any = metric_service.ListTimeSeriesRequest.pb()
ListResponse: Any = metric_service.ListTimeSeriesResponse.pb()
TimeSeriesPb: Any = metric_types.TimeSeries.pb()

SERVICE = "google.monitoring.v3.MetricService"

_TERM = re.compile(
    r'\s*([A-Za-z_][\w.]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|one_of\(((?:\s*"(?:[^"\\]|\\.)*"\s*,?)*)\))\s*'
)
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_filter(text: str) -> list[tuple[str, frozenset[str]]]:
    """`a = "x" AND b = one_of("y","z")` -> [(a, {x}), (b, {y, z})]. ValueError otherwise."""
    terms: list[tuple[str, frozenset[str]]] = []
    for part in re.split(r"\s+AND\s+", text.strip()):
        match = _TERM.fullmatch(part)
        if match is None:
            raise ValueError(f"unsupported filter term: {part!r}")
        key, single, many = match.groups()
        if single is not None:
            values = frozenset({_unescape(single)})
        else:
            values = frozenset(_unescape(v) for v in _QUOTED.findall(many or ""))
        terms.append((_canonical(key), values))
    return terms


def _canonical(key: str) -> str:
    """`resource.label.x` and `resource.labels.x` name the same field."""
    return key.replace("resource.label.", "resource.labels.").replace(
        "metric.label.", "metric.labels."
    )


@dataclass
class StoredSeries:
    project: str
    metric_type: str
    resource_type: str
    resource_labels: dict[str, str]
    metric_labels: dict[str, str]
    points: list[tuple[datetime, float]]  # any order
    metric_kind: int = metric_pb2.MetricDescriptor.GAUGE
    value_type: int = metric_pb2.MetricDescriptor.DOUBLE

    def field(self, name: str) -> str | None:
        if name == "metric.type":
            return self.metric_type
        if name == "resource.type":
            return self.resource_type
        if name.startswith("resource.labels."):
            return self.resource_labels.get(name.removeprefix("resource.labels."))
        if name.startswith("metric.labels."):
            return self.metric_labels.get(name.removeprefix("metric.labels."))
        if name == "project":
            return self.project
        return None


@dataclass
class Injected:
    code: grpc.StatusCode | None
    message: str
    delay: float = 0.0
    match: Callable[[Any], bool] | None = None


@dataclass
class FakeMetricService:
    """The servicer state. Thread-safe; handlers run on the server's thread pool."""

    series: list[StoredSeries] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)  # ListTimeSeriesRequest (protobuf) log
    page_size_cap: int | None = None
    # Knobs to act like a sloppier server: ignore the filter / the cross-series reducer.
    honor_filter: bool = True
    honor_reducer: bool = True
    # The most calls ever served at once (concurrency checks without a wall-clock bound).
    max_in_flight: int = 0
    _in_flight: int = 0
    _faults: list[Injected] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- seeding and control -------------------------------------------------------------------

    def add_series(
        self,
        project: str,
        metric_type: str,
        resource_type: str,
        resource_labels: dict[str, str],
        points: Iterable[tuple[datetime, float]],
        *,
        metric_labels: dict[str, str] | None = None,
        metric_kind: int = metric_pb2.MetricDescriptor.GAUGE,
        value_type: int = metric_pb2.MetricDescriptor.DOUBLE,
    ) -> StoredSeries:
        stored = StoredSeries(
            project,
            metric_type,
            resource_type,
            dict(resource_labels),
            dict(metric_labels or {}),
            list(points),
            metric_kind,
            value_type,
        )
        with self._lock:
            self.series.append(stored)
        return stored

    def fail(
        self,
        code: grpc.StatusCode,
        message: str = "injected failure",
        *,
        times: int = 1,
        match: Callable[[Any], bool] | None = None,
    ) -> None:
        """The next `times` matching calls fail with `code`."""
        with self._lock:
            self._faults.extend(Injected(code, message, 0.0, match) for _ in range(times))

    def delay(self, seconds: float, *, times: int = 1) -> None:
        """The next `times` calls sleep `seconds` before answering (client deadlines)."""
        with self._lock:
            self._faults.extend(Injected(None, "", seconds) for _ in range(times))

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait for calls still being served (a delayed call outlives its client's deadline)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._in_flight == 0:
                    return True
            time.sleep(0.01)
        return False

    def clear(self) -> None:
        with self._lock:
            self.series.clear()
            self.requests.clear()
            self._faults.clear()
            self.max_in_flight = 0
            self.honor_filter = True
            self.honor_reducer = True

    # -- the RPC -------------------------------------------------------------------------------

    def list_time_series(self, request: Any, context: grpc.ServicerContext) -> Any:
        copy = ListRequest()
        copy.CopyFrom(request)
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            return self._serve(request, copy, context)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _serve(self, request: Any, copy: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.requests.append(copy)
            fault = None
            for i, f in enumerate(self._faults):
                if f.match is None or f.match(request):
                    fault = self._faults.pop(i)
                    break
            stored = list(self.series)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.code is not None:
                context.abort(fault.code, fault.message)
        if not request.name.startswith("projects/"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad name {request.name!r}")
        project = request.name.removeprefix("projects/")
        try:
            terms = parse_filter(request.filter)
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        start = request.interval.start_time.ToNanoseconds() / 1e9
        end = request.interval.end_time.ToNanoseconds() / 1e9
        matching = [
            s
            for s in stored
            if s.project == project
            and (not self.honor_filter or all(s.field(k) in vals for k, vals in terms))
        ]
        out = [self._windowed(s, start, end) for s in matching]
        out = [s for s in out if s.points]
        agg = request.aggregation
        reducer = common.Aggregation.Reducer(agg.cross_series_reducer).name
        if reducer != "REDUCE_NONE" and self.honor_reducer:
            out = _reduce(out, reducer, [_canonical(g) for g in agg.group_by_fields])
        offset = int(request.page_token or "0")
        size = request.page_size or len(out) or 1
        if self.page_size_cap is not None:
            size = min(size, self.page_size_cap)
        page = out[offset : offset + size]
        response = ListResponse()
        for s in page:
            response.time_series.append(_to_pb(s))
        if offset + size < len(out):
            response.next_page_token = str(offset + size)
        return response

    @staticmethod
    def _windowed(s: StoredSeries, start: float, end: float) -> StoredSeries:
        points = [(t, v) for t, v in s.points if start <= t.timestamp() <= end]
        return StoredSeries(
            s.project,
            s.metric_type,
            s.resource_type,
            s.resource_labels,
            s.metric_labels,
            points,
            s.metric_kind,
            s.value_type,
        )


def _reduce(
    series: Sequence[StoredSeries], reducer: str, group_by: list[str]
) -> list[StoredSeries]:
    groups: dict[tuple[str | None, ...], list[StoredSeries]] = defaultdict(list)
    for s in series:
        groups[tuple(s.field(g) for g in group_by)].append(s)
    out: list[StoredSeries] = []
    for key, members in groups.items():
        by_time: dict[datetime, list[float]] = defaultdict(list)
        for s in members:
            for t, v in s.points:
                by_time[t].append(v)
        points = [(t, _apply(reducer, vals)) for t, vals in by_time.items()]
        first = members[0]
        rlabels = {
            g.removeprefix("resource.labels."): v
            for g, v in zip(group_by, key, strict=True)
            if g.startswith("resource.labels.") and v is not None
        }
        mlabels = {
            g.removeprefix("metric.labels."): v
            for g, v in zip(group_by, key, strict=True)
            if g.startswith("metric.labels.") and v is not None
        }
        out.append(
            StoredSeries(
                first.project,
                first.metric_type,
                first.resource_type,
                rlabels,
                mlabels,
                points,
                metric_pb2.MetricDescriptor.GAUGE,
                metric_pb2.MetricDescriptor.DOUBLE,
            )
        )
    return out


def _apply(reducer: str, values: list[float]) -> float:
    if reducer == "REDUCE_SUM":
        return math.fsum(values)
    if reducer == "REDUCE_MEAN":
        return math.fsum(values) / len(values)
    if reducer == "REDUCE_MAX":
        return max(values)
    if reducer == "REDUCE_MIN":
        return min(values)
    if reducer == "REDUCE_COUNT":
        return float(len(values))
    raise ValueError(f"fake server does not implement {reducer}")


def _to_pb(s: StoredSeries) -> Any:
    ts = TimeSeriesPb()
    ts.metric.type = s.metric_type
    ts.metric.labels.update(s.metric_labels)
    ts.resource.type = s.resource_type
    ts.resource.labels.update(s.resource_labels)
    ts.metric_kind = s.metric_kind
    ts.value_type = s.value_type
    for t, v in sorted(s.points, key=lambda p: p[0], reverse=True):  # newest first, like the API
        point = ts.points.add()
        point.interval.end_time.FromDatetime(t)
        if s.metric_kind != metric_pb2.MetricDescriptor.GAUGE:
            point.interval.start_time.FromDatetime(t)
        if s.value_type == metric_pb2.MetricDescriptor.INT64:
            point.value.int64_value = round(v)
        else:
            point.value.double_value = v
    return ts


class MonitoringServer:
    """Runs a FakeMetricService on 127.0.0.1:<free port>. Use as a context manager."""

    def __init__(self, service: FakeMetricService | None = None) -> None:
        self.service = service or FakeMetricService()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "ListTimeSeries": grpc.unary_unary_rpc_method_handler(
                    self.service.list_time_series,
                    request_deserializer=ListRequest.FromString,
                    response_serializer=ListResponse.SerializeToString,
                )
            },
        )
        self._server.add_generic_rpc_handlers((handler,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"127.0.0.1:{self.port}"

    def start(self) -> MonitoringServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)

    def __enter__(self) -> MonitoringServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
