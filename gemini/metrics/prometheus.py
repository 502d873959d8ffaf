"""`source.prometheus`: a PromQL instant query over the Prometheus HTTP API (httpx).

`GET {serverAddress}/api/v1/query?query=...&time=<now>`; the result must be a scalar or a
one-element vector. A metric with `windowSeconds` is read over that span instead
(`/api/v1/query_range` from now - window to now, one point per `range_step(window)`), so the
engine's window reduction (`Max` over 15 minutes, say) sees the whole span, as it does in the
simulator; the range must hold one series. Authentication: `auth.bearerTokenFile` (re-read
on every request, so rotated tokens work) or `auth.google: true` (Application Default
Credentials, for Cloud Monitoring's PromQL endpoint
`https://monitoring.googleapis.com/v1/projects/P/location/global/prometheus`, which needs
`roles/monitoring.viewer`). Identical queries in one cycle are sent once. Every
failure becomes an Observation with a stable kind. Must not import `gemini.scalers`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from gemini.errors import MetricError
from gemini.metrics import MetricRequest
from gemini.policy.spec import PrometheusSource as PrometheusConfig
from gemini.series import Observation, Sample

GOOGLE_SCOPE = "https://www.googleapis.com/auth/monitoring.read"


class PrometheusSource:
    """Reads PromQL instant queries. `client` may be injected (tests, custom TLS)."""

    def __init__(self, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(follow_redirects=False)
        self._google: Any = None
        self._google_lock = threading.Lock()

    def fetch(self, requests: Sequence[MetricRequest], now: datetime) -> list[Observation]:
        done: dict[tuple[str, str, str | None, bool, int], Observation] = {}
        out: list[Observation] = []
        for req in requests:
            name = req.metric.name
            cfg = req.metric.source.prometheus
            if cfg is None:
                out.append(Observation.failed(name, "invalid", "not a prometheus metric"))
                continue
            auth = cfg.auth
            window = req.metric.window_seconds
            key = (
                cfg.server_address,
                cfg.query,
                auth.bearer_token_file if auth else None,
                bool(auth and auth.google),
                window,
            )
            if key not in done:
                try:
                    samples = (
                        self._range(cfg, now, window) if window > 0 else (self._query(cfg, now),)
                    )
                    done[key] = Observation(metric=name, samples=samples)
                except MetricError as err:
                    done[key] = Observation.failed(name, err.kind, str(err))
            obs = done[key]
            out.append(
                Observation(
                    obs.metric if obs.metric == name else name,
                    obs.samples,
                    obs.error,
                    obs.error_kind,
                )
            )
        return out

    def close(self) -> None:
        self._client.close()

    # -- one query ---------------------------------------------------------------------------

    def _headers(self, cfg: PrometheusConfig) -> dict[str, str]:
        auth = cfg.auth
        if auth is None:
            return {}
        if auth.bearer_token_file:
            try:
                token = Path(auth.bearer_token_file).read_text().strip()
            except OSError as exc:
                raise MetricError(
                    "permission", f"cannot read bearer token file {auth.bearer_token_file}: {exc}"
                ) from None
            return {"Authorization": f"Bearer {token}"}
        if auth.google:
            return {"Authorization": f"Bearer {self._google_token()}"}
        return {}

    def _google_token(self) -> str:
        import google.auth
        import google.auth.transport.requests
        from google.auth import exceptions as auth_exc

        with self._google_lock:
            try:
                if self._google is None:
                    self._google, _ = google.auth.default(scopes=[GOOGLE_SCOPE])
                if not self._google.valid:
                    self._google.refresh(google.auth.transport.requests.Request())
            except auth_exc.GoogleAuthError as exc:
                raise MetricError(
                    "permission",
                    f"no Google credentials for the PromQL endpoint: {exc} (needs Application "
                    "Default Credentials with roles/monitoring.viewer)",
                ) from None
            return str(self._google.token)

    def _query(self, cfg: PrometheusConfig, now: datetime) -> Sample:
        url = cfg.server_address.rstrip("/") + "/api/v1/query"
        body = self._get(cfg, url, {"query": cfg.query, "time": f"{now.timestamp():.3f}"})
        return _sample(cfg.query, body.get("data"), now)

    def _range(self, cfg: PrometheusConfig, now: datetime, window: int) -> tuple[Sample, ...]:
        url = cfg.server_address.rstrip("/") + "/api/v1/query_range"
        end = now.timestamp()
        step = range_step(window)
        # start on the step grid that ends at `end`: the newest point is now, as an instant
        # query's would be (not up to a step old, which `maxAgeSeconds` could call stale)
        start = end - step * (window // step)
        params = {
            "query": cfg.query,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": str(step),
        }
        return _range_samples(cfg.query, self._get(cfg, url, params).get("data"), now)

    def _get(self, cfg: PrometheusConfig, url: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            resp = self._client.get(
                url, params=params, headers=self._headers(cfg), timeout=cfg.timeout_seconds
            )
        except httpx.TimeoutException as exc:
            raise MetricError(
                "deadline", f"{url}: no answer within {cfg.timeout_seconds} s ({exc})"
            ) from None
        except httpx.TransportError as exc:
            raise MetricError("unavailable", f"{url}: {type(exc).__name__}: {exc}") from None
        body = _json(resp)
        if resp.status_code != 200 or body.get("status") != "success":
            raise _http_error(url, resp.status_code, body)
        return body


def range_step(window: int) -> int:
    """Seconds between the points of a window's range query: 15 (HPA's sync period), coarser
    for windows over an hour (at most 240 points: a day's window is read every 6 minutes)."""
    return max(15, math.ceil(window / 240))


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {"error": resp.text[:200]}
    return body if isinstance(body, dict) else {"error": f"unexpected body {str(body)[:200]}"}


def _http_error(url: str, status: int, body: dict[str, Any]) -> MetricError:
    detail = f"{body.get('errorType', '')} {body.get('error', '')}".strip() or "no detail"
    where = f"{url}: HTTP {status}: {detail}"
    if status in (401, 403):
        return MetricError(
            "permission",
            f"{where} (Cloud Monitoring's PromQL endpoint needs monitoring.timeSeries.list, "
            "role roles/monitoring.viewer)",
        )
    if status == 429:
        return MetricError("quota", where)
    if status == 404:
        return MetricError("not_found", where)
    if status in (400, 422):
        return MetricError("invalid", f"query rejected: {where}")
    if status in (502, 503, 504):
        return MetricError("unavailable", where, retryable=True)
    if body.get("errorType") == "timeout":
        return MetricError("deadline", where)
    return MetricError("error", where)


def _range_samples(query: str, data: Any, now: datetime) -> tuple[Sample, ...]:
    """The one series of a range query's matrix as samples, oldest first, none after `now`."""
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        kind = data.get("resultType") if isinstance(data, dict) else None
        raise MetricError("invalid", f"range query {query!r} returned a {kind}; need a matrix")
    result = data.get("result")
    if not isinstance(result, list) or not result:
        raise MetricError("empty", f"query {query!r} returned no series over the window")
    if len(result) > 1:
        raise MetricError(
            "invalid",
            f"query {query!r} returned {len(result)} series; aggregate it to one (e.g. sum(...))",
        )
    series = result[0]
    values = series.get("values") if isinstance(series, dict) else None
    if not isinstance(values, list) or not values:
        raise MetricError("empty", f"query {query!r} returned no point over the window")
    out = [s for s in (_point(query, pair) for pair in values) if s.at <= now]
    if not out:
        raise MetricError("empty", f"query {query!r} returned no point at or before {now}")
    return tuple(out)


def _sample(query: str, data: Any, now: datetime) -> Sample:
    if not isinstance(data, dict):
        raise MetricError("invalid", f"no data in the answer to {query!r}")
    kind = data.get("resultType")
    result = data.get("result")
    pair: Any
    if kind == "scalar":
        pair = result
    elif kind == "vector" and isinstance(result, list):
        if not result:
            raise MetricError("empty", f"query {query!r} returned an empty vector")
        if len(result) > 1:
            labels = ", ".join(
                str(r.get("metric", {}) if isinstance(r, dict) else r) for r in result[:3]
            )
            raise MetricError(
                "invalid",
                f"query {query!r} returned {len(result)} series ({labels}, ...); aggregate it "
                "to one (e.g. sum(...))",
            )
        pair = result[0].get("value") if isinstance(result[0], dict) else None
    else:
        raise MetricError("invalid", f"query {query!r} returned a {kind}; need scalar or vector")
    point = _point(query, pair)
    return Sample(min(point.at, now), point.value)


def _point(query: str, pair: Any) -> Sample:
    """One `[timestamp, "value"]` pair of an answer; a malformed or non-finite one is invalid."""
    try:
        ts, raw = float(pair[0]), float(pair[1])
        when = datetime.fromtimestamp(ts, UTC)
    except (TypeError, ValueError, IndexError, KeyError, OverflowError, OSError):
        raise MetricError("invalid", f"malformed sample {pair!r} for {query!r}") from None
    if not math.isfinite(raw):
        raise MetricError("invalid", f"query {query!r} returned {raw}")
    return Sample(when, raw)
