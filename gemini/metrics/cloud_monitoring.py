"""Cloud Monitoring reads (`ListTimeSeries`), batched across policies, and `source.cloudMonitoring`.

Owns `SeriesQuery` (one series to read), `MonitoringReader` (groups queries by project, metric
type, filter, aligner, reducer, alignment period and window; one call per group with a filter over
the union of the distinguishing label values, results split back per query; pages followed;
bounded deadlines; jittered retries only for retryable codes; every failure an Observation) and
the `CloudMonitoringSource` for `spec.metrics[].source.cloudMonitoring`. The Pub/Sub and Bigtable
shortcuts are built on this module. Servers that implement less than Cloud Monitoring (no
`one_of`, no aggregation, filters ignored) are handled by falling back to exact-filter calls per
resource, raw points aligned and reduced here, and client-side checks of the returned series.
Points up to `CLOCK_SKEW_SECONDS` after `now` count as taken at `now`.

Endpoint override: `GEMINI_MONITORING_ENDPOINT=host:port` -> plaintext channel, anonymous
credentials. Otherwise Application Default Credentials (Workload Identity in GKE).

Must not import `gemini.scalers`.
"""

from __future__ import annotations

import math
import os
import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gemini.errors import MetricError
from gemini.metrics import MetricRequest
from gemini.policy.spec import CloudMonitoringSource as CloudMonitoringConfig
from gemini.series import Observation, Sample

ENDPOINT_ENV = "GEMINI_MONITORING_ENDPOINT"
PERMISSION = "monitoring.timeSeries.list"
ROLE = "roles/monitoring.viewer"

# Aligners whose output point summarises an interval that may still be filling up.
_INTERVAL_ALIGNERS = frozenset({"ALIGN_DELTA", "ALIGN_RATE", "ALIGN_SUM", "ALIGN_COUNT"})

_METRIC_TYPE = re.compile(r'metric\.type\s*=\s*"([^"]+)"')

MAX_VALUES_PER_CALL = 100  # label values in one one_of(...): keeps the filter short


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """One series to read. Queries equal in everything but `split` values share one call.

    `split` holds (field, value) pairs, e.g. (("resource.labels.subscription_id", "orders"),),
    that pick this query's series out of the group's union; `filter` is the rest of the filter.
    """

    name: str
    project: str
    filter: str
    aligner: str = "ALIGN_MEAN"
    reducer: str = "REDUCE_SUM"
    alignment_period_seconds: int = 60
    lookback_seconds: int = 300
    group_by: tuple[str, ...] = ()
    split: tuple[tuple[str, str], ...] = ()
    non_negative: bool = False
    # (field, value) pairs a returned series must match when it carries the field; checked here,
    # not sent (e.g. the resource type and the project label of the shortcut sources).
    checks: tuple[tuple[str, str], ...] = ()

    def group_key(self) -> tuple[object, ...]:
        return (
            self.project,
            self.filter,
            self.aligner,
            self.reducer,
            self.alignment_period_seconds,
            self.lookback_seconds,
            self.group_by,
            tuple(f for f, _ in self.split),
            self.checks,
        )

    @property
    def metric_type(self) -> str | None:
        match = _METRIC_TYPE.search(self.filter)
        return match.group(1) if match else None

    @property
    def split_values(self) -> tuple[str, ...]:
        return tuple(v for _, v in self.split)


def quote(value: str) -> str:
    """A Cloud Monitoring filter string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def project_check(label: str, project: str) -> tuple[tuple[str, str], ...]:
    """A `SeriesQuery.checks` entry: returned series must carry `project` in `label`. None for a
    project number (the label holds the project ID, which we do not know then)."""
    return () if project.isdigit() else ((label, project),)


def union_filter(base: str, fields: Sequence[str], values: Sequence[tuple[str, ...]]) -> str:
    """`base AND f1 = one_of("a","b") AND ...` over the distinct values of each field."""
    parts = [base]
    for i, name in enumerate(fields):
        distinct = sorted({v[i] for v in values})
        if len(distinct) == 1:
            parts.append(f"{name} = {quote(distinct[0])}")
        else:
            parts.append(f"{name} = one_of({','.join(quote(v) for v in distinct)})")
    return " AND ".join(parts)


_EXACT_TERM = re.compile(r'\s*([A-Za-z_][\w.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*')


def exact_terms(flt: str) -> list[tuple[str, str]] | None:
    """`a = "x" AND b = "y"` -> [(a, x), (b, y)]; None when the filter is anything richer."""
    terms: list[tuple[str, str]] = []
    for part in re.split(r"\s+AND\s+", flt.strip()):
        match = _EXACT_TERM.fullmatch(part)
        if match is None:
            return None
        terms.append((match.group(1), re.sub(r"\\(.)", r"\1", match.group(2))))
    return terms


def _field(series: Any, name: str) -> str | None:
    """A series' value of a filter field (`metric.type`, `resource.type`, a label); None/"" if
    the series does not carry it."""
    if name == "metric.type":
        return str(series.metric.type or "")
    if name == "resource.type":
        return str(series.resource.type or "")
    return _label(series, name)


def _label(series: Any, name: str) -> str | None:
    for prefix, labels in (
        ("resource.labels.", series.resource.labels),
        ("resource.label.", series.resource.labels),
        ("metric.labels.", series.metric.labels),
        ("metric.label.", series.metric.labels),
    ):
        if name.startswith(prefix):
            value = labels.get(name.removeprefix(prefix))
            return None if value is None else str(value)
    return None


# The helpers below read raw protobuf messages (`_list` unwraps the library's proto-plus
# wrappers once per page): attribute access on the wrappers costs ~10x more, and a batch of
# thousands of series spends most of its CPU there.


def _point_value(point: Any) -> float:
    value = point.value
    which = value.WhichOneof("value")
    if which == "double_value":
        return float(value.double_value)
    if which == "int64_value":
        return float(value.int64_value)
    if which == "bool_value":
        return 1.0 if value.bool_value else 0.0
    if which == "distribution_value":
        return float(value.distribution_value.mean)
    raise MetricError("invalid", f"unsupported point value type {which!r}")


def _point_time(point: Any) -> datetime:
    """A point's end time; a server that set only `start_time` gets that instead."""
    end = point.interval.end_time
    if end.seconds == 0 and end.nanos == 0:
        start = point.interval.start_time
        if start.seconds != 0 or start.nanos != 0:
            return _as_utc(start)
    return _as_utc(end)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _as_utc(ts: Any) -> datetime:
    """A `google.protobuf.Timestamp` as an aware UTC datetime (to the microsecond)."""
    return _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def classify(exc: BaseException) -> MetricError:
    """Map a client-library exception to a MetricError with a stable kind."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    if isinstance(exc, MetricError):
        return exc
    if isinstance(exc, gexc.PermissionDenied | gexc.Unauthenticated):
        return MetricError(
            "permission",
            f"permission denied: the caller needs {PERMISSION} (role {ROLE}) on the project: "
            f"{getattr(exc, 'message', exc)}",
        )
    if isinstance(exc, auth_exc.DefaultCredentialsError):
        return MetricError(
            "permission",
            f"no Google credentials: {exc} (set up Application Default Credentials or Workload "
            f"Identity with {ROLE}, or set {ENDPOINT_ENV} for a local server)",
        )
    if isinstance(exc, gexc.ServiceUnavailable):
        return MetricError("unavailable", f"Cloud Monitoring unavailable: {exc}", retryable=True)
    if isinstance(exc, gexc.DeadlineExceeded):
        return MetricError("deadline", f"Cloud Monitoring deadline exceeded: {exc}", retryable=True)
    if isinstance(exc, gexc.InternalServerError):
        return MetricError("error", f"Cloud Monitoring internal error: {exc}", retryable=True)
    if isinstance(exc, gexc.ResourceExhausted | gexc.TooManyRequests):
        return MetricError(
            "quota",
            f"Cloud Monitoring read quota exhausted (6,000 requests/min per project): {exc}",
        )
    if isinstance(exc, gexc.NotFound):
        return MetricError("not_found", f"not found: {exc}")
    if isinstance(exc, gexc.InvalidArgument | gexc.BadRequest):
        return MetricError("invalid", f"Cloud Monitoring rejected the query: {exc}")
    return MetricError("error", f"Cloud Monitoring call failed: {type(exc).__name__}: {exc}")


_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def make_client(endpoint: str | None = None) -> Any:
    """A MetricServiceClient; `endpoint` (or $GEMINI_MONITORING_ENDPOINT) -> plaintext, anonymous.

    Clients are shared per endpoint within the process (one channel for every source).
    """
    endpoint = endpoint if endpoint is not None else os.environ.get(ENDPOINT_ENV) or ""
    with _CLIENTS_LOCK:
        if endpoint not in _CLIENTS:
            from google.cloud import monitoring_v3

            if endpoint:
                import grpc
                from google.cloud.monitoring_v3.services.metric_service.transports import (
                    MetricServiceGrpcTransport,
                )

                channel = grpc.insecure_channel(endpoint)
                transport = MetricServiceGrpcTransport(channel=channel)
                _CLIENTS[endpoint] = monitoring_v3.MetricServiceClient(transport=transport)
            else:
                _CLIENTS[endpoint] = monitoring_v3.MetricServiceClient()
        return _CLIENTS[endpoint]


@dataclass
class CallStats:
    """What the reader did (for tests, the benchmark and `/metrics`)."""

    calls: int = 0  # ListTimeSeries calls, retries and extra pages included
    pages: int = 0
    retries: int = 0
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Fallbacks for servers that do less than Cloud Monitoring: "unbatched" (a group re-read one
    # resource per call), "raw" (a call re-sent without aggregation).
    fallbacks: dict[str, int] = field(default_factory=lambda: defaultdict(int))


# Aligners that can be applied here to raw points of a gauge when a server rejects `aggregation`.
_CLIENT_ALIGNERS: dict[str, Callable[[list[float]], float]] = {
    "ALIGN_MEAN": lambda v: math.fsum(v) / len(v),
    "ALIGN_MAX": max,
    "ALIGN_MIN": min,
    "ALIGN_SUM": math.fsum,
    "ALIGN_COUNT": lambda v: float(len(v)),
    "ALIGN_NEXT_OLDER": lambda v: v[-1],
    "ALIGN_NONE": lambda v: v[-1],
}

CLOCK_SKEW_SECONDS = 60.0  # a point at most this far after `now` is read as taken at `now`
MAX_PAGES = 1000  # per call: guards against a server that repeats its next_page_token

Key = tuple[str, ...]
Found = dict[Key, "list[Any] | MetricError"]


class MonitoringReader:
    """Reads SeriesQuery batches with as few `ListTimeSeries` calls as the groups allow.

    It also copes with servers that implement less of the API than Cloud Monitoring (local test
    servers, emulators): a group whose `one_of` filter is rejected, matches nothing or returns
    series without the distinguishing labels is re-read one resource per call (exact-equality
    filters); a call whose aggregation is rejected is re-sent without it and aligned and reduced
    here; series a server should have filtered out (other metric types, resources, projects) are
    dropped; several series for one resource are combined with the query's reducer. What worked is
    remembered per reader, so later cycles skip the failing form.
    """

    def __init__(
        self,
        client: Any | None = None,
        *,
        endpoint: str | None = None,
        timeout_seconds: float = 10.0,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
        max_values_per_call: int = MAX_VALUES_PER_CALL,
        batch: bool = True,
        concurrency: int = 8,
        budget_seconds: float = 30.0,
        clock_skew_seconds: float = CLOCK_SKEW_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._endpoint = endpoint
        self.timeout_seconds = timeout_seconds
        self.attempts = max(1, attempts)
        self.backoff_seconds = backoff_seconds
        self.max_values_per_call = max(1, max_values_per_call)
        self.batch = batch
        self.concurrency = concurrency
        self.budget_seconds = budget_seconds
        self.clock_skew_seconds = max(0.0, clock_skew_seconds)
        self._lock = threading.Lock()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.stats = CallStats()
        # Learned from the server: does it take `one_of(...)`? does it take `aggregation`?
        self.one_of_supported = True
        self.aggregation_supported = True

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self._endpoint)
        return self._client

    def read(self, queries: Sequence[SeriesQuery], now: datetime) -> list[Observation]:
        """One Observation per query, in order; never a sample after `now`."""
        out: list[Observation | None] = [None] * len(queries)
        groups: dict[tuple[object, ...], list[int]] = defaultdict(list)
        for i, q in enumerate(queries):
            key = q.group_key() if self.batch else (i,)
            groups[key].append(i)
        tasks: list[tuple[SeriesQuery, list[Key], list[int]]] = []
        for idxs in groups.values():
            values = sorted({queries[i].split_values for i in idxs})
            for lo in range(0, len(values), self.max_values_per_call):
                chunk = values[lo : lo + self.max_values_per_call]
                wanted = set(chunk)
                members = [i for i in idxs if queries[i].split_values in wanted]
                tasks.append((queries[idxs[0]], chunk, members))
        deadline = time.monotonic() + self.budget_seconds

        def fail(i: int, err: MetricError) -> None:
            with self._lock:
                self.stats.failures[err.kind] += 1
            out[i] = Observation.failed(queries[i].name, err.kind, str(err))

        def run(task: tuple[SeriesQuery, list[Key], list[int]]) -> None:
            first, chunk, members = task
            try:
                found = self._call(first, chunk, now, deadline)
            except Exception as exc:  # every failure becomes a value
                err = classify(exc)
                for i in members:
                    fail(i, err)
                return
            for i in members:
                got = found.get(queries[i].split_values)
                if isinstance(got, MetricError):
                    fail(i, got)
                else:
                    out[i] = _observation(queries[i], got, now, self.clock_skew_seconds)

        if len(tasks) <= 1 or self.concurrency <= 1:
            for task in tasks:
                run(task)
        else:
            workers = min(self.concurrency, len(tasks))
            with ThreadPoolExecutor(workers, thread_name_prefix="gemini-monitoring") as pool:
                list(pool.map(run, tasks))
        return [
            o if o is not None else Observation.failed(q.name, "error", "not read")
            for o, q in zip(out, queries, strict=True)
        ]

    # -- one group call ------------------------------------------------------------------------

    def _request(
        self,
        q: SeriesQuery,
        values: Sequence[Key],
        now: datetime,
        *,
        aggregate: bool = True,
        narrow: bool = True,
    ) -> Any:
        """The ListTimeSeriesRequest; `narrow=False` leaves the resource terms out of the filter."""
        from google.cloud import monitoring_v3

        fields = [f for f, _ in q.split]
        flt = union_filter(q.filter, fields, values) if fields and narrow else q.filter
        end = now
        start = now - timedelta(seconds=q.lookback_seconds)
        request = monitoring_v3.ListTimeSeriesRequest(
            name=f"projects/{q.project}",
            filter=flt,
            interval=monitoring_v3.TimeInterval(start_time=start, end_time=end),
            view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
        )
        if aggregate:
            aggregation: dict[str, Any] = {
                "alignment_period": {"seconds": q.alignment_period_seconds},
                "per_series_aligner": q.aligner,
                "cross_series_reducer": q.reducer,
            }
            if q.reducer != "REDUCE_NONE":
                aggregation["group_by_fields"] = list(q.group_by) + [
                    f for f in fields if f not in q.group_by
                ]
            request.aggregation = monitoring_v3.Aggregation(aggregation)
        return request

    def _call(self, q: SeriesQuery, values: Sequence[Key], now: datetime, deadline: float) -> Found:
        """The group's series per split key (or a per-key failure when read one by one)."""
        if not q.split:
            return self._one(q, values, now, deadline)
        if len(values) == 1:
            return self._each(q, values, now, deadline)
        if not self.one_of_supported:
            return self._one_by_one(q, values, now, deadline)
        try:
            series = self._fetch(q, values, now, deadline)
        except MetricError as err:
            if err.kind != "invalid":
                raise
            # A server that does not take one_of(...): one exact-equality filter per resource.
            return self._learn(self._one_by_one(q, values, now, deadline))
        by_split, unattributed = _attribute(q, values, series)
        if unattributed or not by_split:
            # Series without the distinguishing labels, or nothing matched at all (a server that
            # ignored or misread one_of): ask for each resource on its own.
            return self._learn(self._one_by_one(q, values, now, deadline))
        return dict(by_split)

    def _learn(self, found: Found) -> Found:
        """Resources read one by one where the batched call failed: skip one_of from now on."""
        if any(v and not isinstance(v, MetricError) for v in found.values()):
            self.one_of_supported = False
        return found

    def _one(self, q: SeriesQuery, values: Sequence[Key], now: datetime, deadline: float) -> Found:
        series = self._fetch(q, values, now, deadline)
        by_split, _ = _attribute(q, values, series)
        return dict(by_split)

    def _one_by_one(
        self, q: SeriesQuery, values: Sequence[Key], now: datetime, deadline: float
    ) -> Found:
        with self._lock:
            self.stats.fallbacks["unbatched"] += 1
        return self._each(q, values, now, deadline)

    def _each(self, q: SeriesQuery, values: Sequence[Key], now: datetime, deadline: float) -> Found:
        """One call per resource with exact filters."""
        found: Found = {}
        for value in values:
            try:
                found.update(self._one(q, [value], now, deadline))
            except Exception as exc:
                err = classify(exc)
                if err.kind == "invalid" and not found:
                    # Even `label = "value"` is rejected: one call without the resource terms,
                    # series picked by their labels here.
                    wide = self._wide(q, values, now, deadline)
                    if wide is not None:
                        return wide
                found[value] = err
        return found

    def _wide(
        self, q: SeriesQuery, values: Sequence[Key], now: datetime, deadline: float
    ) -> Found | None:
        with self._lock:
            self.stats.fallbacks["wide"] += 1
        try:
            series = self._fetch(q, values, now, deadline, narrow=False)
        except MetricError:
            return None
        by_split, unattributed = _attribute(q, values, series, trust_single=False)
        if unattributed and not by_split:
            return None
        return dict(by_split)

    def _fetch(
        self,
        q: SeriesQuery,
        values: Sequence[Key],
        now: datetime,
        deadline: float,
        *,
        narrow: bool = True,
    ) -> list[Any]:
        """The call with aggregation; if the server rejects it and the aligner can be applied
        here, the same call without aggregation (raw points, aligned by `_observation`)."""
        raw_ok = q.aligner in _CLIENT_ALIGNERS
        if not self.aggregation_supported and raw_ok:
            raw = self._request(q, values, now, aggregate=False, narrow=narrow)
            return self._retrying(raw, deadline)
        try:
            return self._retrying(self._request(q, values, now, narrow=narrow), deadline)
        except MetricError as err:
            if err.kind != "invalid" or not raw_ok:
                raise
            with self._lock:
                self.stats.fallbacks["raw"] += 1
            try:
                raw = self._request(q, values, now, aggregate=False, narrow=narrow)
                series = self._retrying(raw, deadline)
            except MetricError:
                raise err from None  # the query itself is rejected: report the first answer
            self.aggregation_supported = False
            return series

    def _retrying(self, request: Any, deadline: float) -> list[Any]:
        delay = self.backoff_seconds
        for attempt in range(1, self.attempts + 1):
            try:
                return self._list(request, deadline)
            except Exception as exc:
                err = classify(exc)
                if not err.retryable or attempt == self.attempts:
                    raise err from exc
                with self._lock:
                    self.stats.retries += 1
                    pause = self._rng.uniform(0.0, delay)  # full jitter; the bound doubles
                if time.monotonic() + pause >= deadline:
                    raise err from exc  # no budget left for another attempt
                self._sleep(pause)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _list(self, request: Any, deadline: float) -> list[Any]:
        out: list[Any] = []
        token = ""
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MetricError(
                    "deadline", f"read budget of {self.budget_seconds} s spent", retryable=False
                )
            request.page_token = token
            with self._lock:
                self.stats.calls += 1
                self.stats.pages += 1
            # One page per call: the library's pager would hide calls and retries from us.
            response = self.client.list_time_series(
                request=request, retry=None, timeout=min(self.timeout_seconds, remaining)
            )
            page = next(iter(response.pages))
            out.extend(type(page).pb(page).time_series)  # raw messages: see `_point_value`
            seen.add(token)
            token = page.next_page_token
            if not token or token in seen:  # no more pages (or a server repeating itself)
                break
        return out if len(seen) == 1 else _distinct(out)


def _distinct(series: list[Any]) -> list[Any]:
    """Drop repeated identical series (a server that answered several pages with the same)."""
    seen: set[bytes] = set()
    out: list[Any] = []
    for s in series:
        key = s.SerializeToString(deterministic=True)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def _attribute(
    q: SeriesQuery, values: Sequence[Key], series: Sequence[Any], *, trust_single: bool = True
) -> tuple[dict[Key, list[Any]], bool]:
    """Split a call's series per split key. Series a server should have filtered out are
    dropped: another metric type, or a field of the query's exact terms / checks / split that
    the series carries with another value. Returns (by key, whether some series could not be
    attributed because they lack a distinguishing label). A series without the labels is the
    resource's when the call named one resource (and `trust_single`)."""
    fields = [f for f, _ in q.split]
    terms = exact_terms(q.filter)
    if terms is None:  # a richer filter: only its metric type is checked here
        terms = [("metric.type", q.metric_type)] if q.metric_type else []
    checks = [*terms, *q.checks]
    wanted = set(values)
    by_split: dict[Key, list[Any]] = defaultdict(list)
    unattributed = False
    for s in series:
        if any((got := _field(s, f)) and got != v for f, v in checks):
            continue  # not what was asked for (a server that ignored part of the filter)
        labels = tuple(_field(s, f) or "" for f in fields)
        if all(labels):
            key = labels
        elif (
            trust_single
            and len(values) == 1
            and all(not got or got == want for got, want in zip(labels, values[0], strict=True))
        ):
            key = tuple(values[0])  # the filter named one resource: an unlabelled series is it
        else:
            unattributed = True
            continue
        if key in wanted:
            by_split[key].append(s)
    return by_split, unattributed


def _samples(
    q: SeriesQuery, s: Any, now: datetime, skew_seconds: float
) -> tuple[list[Sample], int]:
    """A series' points as samples, oldest first, and how many points lay too far after `now`.

    A point up to `skew_seconds` after `now` (clock skew between the server and us) counts as
    taken at `now`, later ones are dropped: never a sample after `now`. The partial newest
    interval of a rate is dropped. Raises MetricError(invalid) on NaN, inf, or a negative value
    where none is possible."""
    partial_after = now - timedelta(seconds=q.alignment_period_seconds)
    latest_ok = now + timedelta(seconds=skew_seconds)
    drop_partial = q.aligner in _INTERVAL_ALIGNERS or int(s.metric_kind) in (2, 3)  # DELTA, CUM.
    points: list[tuple[datetime, float]] = []
    future = 0
    for point in s.points:
        at = _point_time(point)
        if at > latest_ok:
            future += 1
            continue
        if drop_partial and at > partial_after:
            continue  # the newest interval may still be filling up
        value = _point_value(point)
        if not math.isfinite(value):
            raise MetricError("invalid", f"point at {at.isoformat()} is {value}")
        if q.non_negative and value < 0:
            raise MetricError("invalid", f"point at {at.isoformat()} is negative ({value})")
        points.append((at, value))
    points.sort(key=lambda p: p[0])  # servers answer newest first (or not)
    by_time: dict[datetime, float] = {}
    for at, value in points:  # points within the skew collapse onto `now`: the newest wins
        by_time[min(at, now)] = value
    return [Sample(at, v) for at, v in sorted(by_time.items())], future


_REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "REDUCE_SUM": math.fsum,
    "REDUCE_MEAN": lambda v: math.fsum(v) / len(v),
    "REDUCE_MAX": max,
    "REDUCE_MIN": min,
    "REDUCE_COUNT": lambda v: float(len(v)),
}


def _merge(q: SeriesQuery, per_series: list[list[Sample]], now: datetime) -> list[Sample]:
    """Combine several series of one resource (a server that did not reduce, or did not align):
    each series' points are aligned into alignment periods ending at `now`, `now - period`, ...
    with the query's aligner, then reduced across series per period with its reducer. A period's
    sample carries the newest point time that went into it (so freshness stays honest)."""
    period = float(q.alignment_period_seconds)
    align = _CLIENT_ALIGNERS.get(q.aligner, _CLIENT_ALIGNERS["ALIGN_NONE"])
    by_bucket: dict[int, list[float]] = defaultdict(list)
    bucket_time: dict[int, datetime] = {}
    for samples in per_series:
        buckets: dict[int, list[Sample]] = defaultdict(list)
        for smp in samples:
            buckets[max(0, math.ceil((now - smp.at).total_seconds() / period))].append(smp)
        for k, members in buckets.items():
            by_bucket[k].append(align([m.value for m in members]))
            newest = members[-1].at
            bucket_time[k] = max(bucket_time.get(k, newest), newest)
    fn = _REDUCERS[q.reducer]
    return [Sample(bucket_time[k], fn(by_bucket[k])) for k in sorted(by_bucket, reverse=True)]


def _observation(
    q: SeriesQuery, series: list[Any] | None, now: datetime, skew_seconds: float = 0.0
) -> Observation:
    if not series:
        return Observation.failed(
            q.name,
            "empty",
            f"no time series matched in the last {q.lookback_seconds} s: {_desc(q)}",
        )
    # With a split (or no group-by), the API returns one series per split key; a server that did
    # not reduce gets the same reduction here. With a group-by, several series mean the user's
    # filter/group-by leaves more than one: refuse rather than guess.
    reducible = q.reducer in _REDUCERS and (bool(q.split) or not q.group_by)
    if len(series) > 1 and not reducible:
        return Observation.failed(
            q.name,
            "invalid",
            f"{len(series)} time series matched {_desc(q)}; set a cross-series reducer (or narrow "
            "the filter) so that one series remains",
        )
    future = 0
    per_series: list[list[Sample]] = []
    try:
        for s in series:
            samples, ahead = _samples(q, s, now, skew_seconds)
            per_series.append(samples)
            future += ahead
    except MetricError as err:
        return Observation.failed(q.name, err.kind, f"{err} ({_desc(q)})")
    per_series = [p for p in per_series if p]
    samples = per_series[0] if len(per_series) == 1 else _merge(q, per_series, now)
    if not samples:
        skewed = (
            f"; {future} point(s) lie more than {skew_seconds:g} s after the read time "
            "(check the clocks)"
            if future
            else ""
        )
        return Observation.failed(
            q.name,
            "empty",
            f"no complete point in the last {q.lookback_seconds} s: {_desc(q)}{skewed}",
        )
    return Observation(metric=q.name, samples=tuple(samples))


def _desc(q: SeriesQuery) -> str:
    where = " AND ".join(f"{f} = {quote(v)}" for f, v in q.split)
    return f"projects/{q.project} {q.filter}" + (f" AND {where}" if where else "")


def query_for(name: str, cfg: CloudMonitoringConfig) -> SeriesQuery:
    return SeriesQuery(
        name=name,
        project=cfg.project,
        filter=cfg.filter,
        aligner=cfg.aligner.value,
        reducer=cfg.reducer.value,
        alignment_period_seconds=cfg.alignment_period_seconds,
        lookback_seconds=cfg.lookback_seconds,
        group_by=tuple(cfg.group_by),
    )


class QuerySource:
    """Base of the sources that turn each MetricRequest into a SeriesQuery for one reader."""

    def __init__(
        self,
        client: Any | None = None,
        *,
        reader: MonitoringReader | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.reader = reader or MonitoringReader(client, endpoint=endpoint)

    def query(self, request: MetricRequest) -> SeriesQuery:
        raise NotImplementedError

    def fetch(self, requests: Sequence[MetricRequest], now: datetime) -> list[Observation]:
        queries: list[SeriesQuery | str] = []
        for req in requests:
            try:
                q = self.query(req)
                # the interval covers the metric's window (and one alignment period before
                # it), so the engine's reduction sees the whole span, as in the simulator
                wanted = req.metric.window_seconds + q.alignment_period_seconds
                if req.metric.window_seconds and q.lookback_seconds < wanted:
                    q = replace(q, lookback_seconds=wanted)
                queries.append(q)
            except (ValueError, TypeError) as exc:
                queries.append(f"{type(self).__name__} cannot read this metric: {exc}")
        good = [q for q in queries if isinstance(q, SeriesQuery)]
        results = iter(self.reader.read(good, now))
        return [
            next(results)
            if isinstance(q, SeriesQuery)
            else Observation.failed(req.metric.name, "invalid", q)
            for req, q in zip(requests, queries, strict=True)
        ]

    def close(self) -> None:
        return None


class CloudMonitoringSource(QuerySource):
    """`source.cloudMonitoring`: any filter; identical queries across policies share one call."""

    def query(self, request: MetricRequest) -> SeriesQuery:
        cfg = request.metric.source.cloud_monitoring
        if cfg is None:
            raise ValueError("not a cloudMonitoring metric")
        return query_for(request.metric.name, cfg)
