"""A deliberately naive `google.monitoring.v3.MetricService` (gRPC, 127.0.0.1) for tests.

The kind of server someone else might write in an afternoon from the protobuf types that
google-cloud-monitoring ships, knowing nothing about gemini: it is here to catch assumptions that
`tests/fakes/monitoring.py` shares with the client code. By default it

- understands only `field = "value"` terms joined by `AND` and answers `one_of(...)` with
  INVALID_ARGUMENT (`one_of="ignore"` drops such a term, `"nothing"` makes it match nothing);
  `match="metric-type"` looks only at `metric.type`, `match="none"` returns every series
  (`ignore_project=True`: of every project); `singular_labels=True` knows label fields only as
  `resource.label.x` and rejects `resource.labels.x`;
- has no aggregation: it returns the stored points as they are, one series per stored series
  (`aggregation="reject"` answers any aligner/reducer with INVALID_ARGUMENT);
- writes the stored Python value as `int64_value` when it is an int, `double_value` otherwise,
  newest point first (`order="oldest"` reverses), intervals with only an `end_time`;
- ignores the request interval unless `honor_interval=True`, and never pages
  (`stuck_page_token=True` returns the same `next_page_token` forever).

Every request is logged. Imports nothing from gemini.
"""

from __future__ import annotations

import re
import threading
from concurrent import futures
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import grpc
from google.cloud.monitoring_v3.types import metric_service

_Request: Any = metric_service.ListTimeSeriesRequest.pb()
_Response: Any = metric_service.ListTimeSeriesResponse.pb()

_EQUALS = re.compile(r'^([\w.]+)\s*=\s*"(.*)"$')


@dataclass
class Held:
    """One stored series: labels as they would appear on the monitored resource."""

    project: str
    metric_type: str
    resource_labels: dict[str, str]
    points: list[tuple[datetime, int | float]]
    resource_type: str = ""
    metric_labels: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        if key == "metric.type":
            return self.metric_type
        if key == "resource.type":
            return self.resource_type or None
        for prefix, labels in (
            ("resource.labels.", self.resource_labels),
            ("resource.label.", self.resource_labels),
            ("metric.labels.", self.metric_labels),
            ("metric.label.", self.metric_labels),
        ):
            if key.startswith(prefix):
                return labels.get(key[len(prefix) :])
        return None


class NaiveMetricService:
    def __init__(
        self,
        *,
        one_of: Literal["reject", "ignore", "nothing"] = "reject",
        match: Literal["exact", "metric-type", "none"] = "exact",
        aggregation: Literal["ignore", "reject"] = "ignore",
        order: Literal["newest", "oldest"] = "newest",
        honor_interval: bool = False,
        strip_labels: bool = False,
        stuck_page_token: bool = False,
        ignore_project: bool = False,
        singular_labels: bool = False,
    ) -> None:
        self.one_of = one_of
        self.match = match
        self.aggregation = aggregation
        self.order = order
        self.honor_interval = honor_interval
        self.strip_labels = strip_labels
        self.stuck_page_token = stuck_page_token
        self.ignore_project = ignore_project
        self.singular_labels = singular_labels
        self.held: list[Held] = []
        self.requests: list[Any] = []
        self._lock = threading.Lock()

    def add(
        self,
        project: str,
        metric_type: str,
        resource_labels: dict[str, str],
        points: list[tuple[datetime, int | float]],
        *,
        resource_type: str = "",
        metric_labels: dict[str, str] | None = None,
    ) -> None:
        with self._lock:
            self.held.append(
                Held(
                    project,
                    metric_type,
                    dict(resource_labels),
                    list(points),
                    resource_type,
                    dict(metric_labels or {}),
                )
            )

    def _terms(self, text: str, context: grpc.ServicerContext) -> list[tuple[str, str | None]]:
        """(key, value) per term; value None means "matches nothing"."""
        terms: list[tuple[str, str | None]] = []
        for raw in text.split(" AND "):
            term = raw.strip()
            if "one_of(" in term:
                if self.one_of == "reject":
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"cannot parse {term!r}")
                if self.one_of == "nothing":
                    terms.append((term.split("=")[0].strip(), None))
                continue
            found = _EQUALS.match(term)
            if found is None:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"cannot parse {term!r}")
            if self.singular_labels and ".labels." in found.group(1):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown field {found.group(1)}")
            terms.append((found.group(1), found.group(2).replace('\\"', '"')))
        return terms

    def ListTimeSeries(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.requests.append(request)
            held = list(self.held)
        agg = request.aggregation
        if self.aggregation == "reject" and (agg.per_series_aligner or agg.cross_series_reducer):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "aggregation is not supported")
        terms = self._terms(request.filter, context)
        if self.match == "metric-type":
            terms = [t for t in terms if t[0] == "metric.type"]
        elif self.match == "none":
            terms = []
        project = request.name.split("/")[-1]
        chosen = [
            h
            for h in held
            if (self.ignore_project or h.project == project)
            and all(v is not None and h.get(k) == v for k, v in terms)
        ]
        response = _Response()
        start = request.interval.start_time.seconds
        end = request.interval.end_time.seconds
        for h in chosen:
            ts = response.time_series.add()
            ts.metric.type = h.metric_type
            ts.metric.labels.update(h.metric_labels)
            if h.resource_type:
                ts.resource.type = h.resource_type
            if not self.strip_labels:
                ts.resource.labels.update(h.resource_labels)
            points = sorted(h.points, key=lambda p: p[0], reverse=self.order == "newest")
            for at, value in points:
                if self.honor_interval and not start <= at.timestamp() <= end:
                    continue
                point = ts.points.add()
                point.interval.end_time.FromDatetime(at)
                if isinstance(value, int):
                    point.value.int64_value = value
                else:
                    point.value.double_value = value
        if self.stuck_page_token:
            response.next_page_token = "more"
        return response


class NaiveServer:
    """Serves a NaiveMetricService on 127.0.0.1:<free port>; a context manager."""

    def __init__(self, service: NaiveMetricService) -> None:
        self.service = service
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        rpc = grpc.unary_unary_rpc_method_handler(
            service.ListTimeSeries,
            request_deserializer=_Request.FromString,
            response_serializer=_Response.SerializeToString,
        )
        self._server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "google.monitoring.v3.MetricService", {"ListTimeSeries": rpc}
                ),
            )
        )
        self.endpoint = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"

    def __enter__(self) -> NaiveServer:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)
