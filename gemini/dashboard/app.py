"""The dashboard: a read-only Starlette app over a `DecisionStore` (pages + JSON API).

`create_app(store, ...)` returns the ASGI app that `gemini dashboard`, the controller and the demo
serve. GET (and HEAD) only; optional bearer-token or trusted-header auth; Jinja2 autoescape on;
page data reaches the browser only as JSON inside `<script type="application/json">` and is drawn
by our static `app.js` with plotly's bundled JS served from the installed plotly package (no CDN).
Links carry the path prefix (`root_path`, the ASGI root_path or `X-Forwarded-Prefix`).
Must not import `gemini.metrics`, `gemini.scalers` or `gemini.controller`; never calls a scaler.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from gemini.clock import iso, parse_iso, span, utc
from gemini.policy.decision import Decision
from gemini.store import DecisionStore, StoreError

HERE = Path(__file__).resolve().parent
MAX_LIMIT = 10_000
CHART_POINTS = 10_000  # a day at one decision per 15 s is 5,760
TABLE_ROWS = 200
SPARK_POINTS = 60
_PREFIX_RE = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def plotly_js() -> Path:
    """plotly.min.js from the installed plotly package."""
    import plotly

    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    if not path.exists():
        raise RuntimeError(f"plotly's bundled JS not found at {path}")
    return path


class BadParam(ValueError):
    """A query parameter is invalid; the message names it."""


def _time_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return parse_iso(raw)
    except ValueError:
        raise BadParam(f"{name}: not an ISO-8601 time: {raw!r}") from None


def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParam(f"{name}: not an integer: {raw!r}") from None
    if not lo <= value <= hi:
        raise BadParam(f"{name}: {value} is outside {lo}..{hi}")
    return value


def _prefix(request: Request, root_path: str) -> str:
    fwd = request.headers.get("x-forwarded-prefix", "").rstrip("/")
    if fwd and not _PREFIX_RE.match(fwd):
        fwd = ""
    base = (
        root_path.rstrip("/") if root_path else str(request.scope.get("root_path", "")).rstrip("/")
    )
    return fwd + base


def policy_href(policy: str) -> str:
    ns, _, name = policy.partition("/")
    if not name:
        ns, name = "", ns
    return f"/policies/{quote(ns or '-', safe='')}/{quote(name, safe='/')}"


def sparkline(values: list[int], width: int = 120, height: int = 24) -> str:
    """SVG polyline points for `values` (oldest first); numbers only, safe to put in markup."""
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1
    step = width / max(1, len(values) - 1)
    pts = [
        f"{i * step:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}"
        for i, v in enumerate(values)
    ]
    if len(pts) == 1:
        pts.append(f"{width:.1f},{pts[0].split(',')[1]}")
    return " ".join(pts)


@dataclass(frozen=True, slots=True)
class Auth:
    token: str | None
    header: str | None

    def allows(self, scope: Scope) -> bool:
        if self.token is None and self.header is None:
            return True
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.token is not None:
            got = headers.get("authorization", "")
            if got.startswith("Bearer ") and hmac.compare_digest(
                got[7:].strip().encode(), self.token.encode()
            ):
                return True
        return bool(self.header is not None and headers.get(self.header.lower(), "").strip())


class Guard:
    """ASGI middleware: read-only methods, auth (except /healthz and /static), security headers."""

    def __init__(self, app: ASGIApp, auth: Auth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if scope["method"] not in {"GET", "HEAD"}:
            resp: Response = JSONResponse(
                {"error": "the dashboard is read-only"}, 405, headers={"Allow": "GET, HEAD"}
            )
            await resp(scope, receive, send)
            return
        public = path == "/healthz" or path.startswith("/static/")
        if not public and not self.auth.allows(scope):
            headers = {"WWW-Authenticate": "Bearer"} if self.auth.token else {}
            resp = JSONResponse({"error": "unauthorized"}, 401, headers=headers)
            await resp(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                extra = [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    store: DecisionStore,
    *,
    title: str = "gemini",
    auth_token: str | None = None,
    trusted_header: str | None = None,
    root_path: str = "",
    writer_stats: Callable[[], Any] | None = None,
) -> ASGIApp:
    """The dashboard ASGI app over `store`. `writer_stats` (optional) returns a
    `WriterStats` shown in `/healthz` (buffered, dropped, gaps) when the app runs in a controller."""
    if root_path and not _PREFIX_RE.match(root_path.rstrip("/")):
        raise ValueError(f"root_path {root_path!r}: expected a path like /gemini")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["href"] = policy_href
    env.filters["iso"] = lambda d: iso(d) if d else ""
    env.filters["span"] = span
    templates = Jinja2Templates(env=env)

    def recording_gaps() -> list[dict[str, Any]]:
        """Decisions the controller could not record (store outage, full buffer)."""
        if writer_stats is None:
            return []
        s = writer_stats()
        return [{"dropped": g.dropped, "first": g.first_at, "last": g.last_at} for g in s.gaps]

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        ctx.update(title=title, base=_prefix(request, root_path), gaps=recording_gaps())
        return templates.TemplateResponse(request, name, ctx, status_code=status)

    def guarded(
        fn: Callable[[Request], Awaitable[Response]], api: bool
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                return await fn(request)
            except BadParam as exc:
                if api:
                    return JSONResponse({"error": str(exc)}, 400)
                return page(request, "error.html", 400, message=str(exc))
            except StoreError as exc:
                if api:
                    return JSONResponse({"error": str(exc)}, 503)
                return page(request, "error.html", 503, message=str(exc))

        return run

    async def healthz(request: Request) -> Response:
        body: dict[str, Any] = {"status": "ok"}
        code = 200
        try:
            store.ping()
        except StoreError as exc:
            body, code = {"status": "store unreachable", "error": str(exc)}, 503
        if writer_stats is not None:
            s = writer_stats()
            body["writer"] = {
                "buffered": s.buffered,
                "written": s.written,
                "dropped": s.dropped,
                "healthy": s.healthy,
                "gaps": [
                    {"dropped": g.dropped, "from": iso(g.first_at), "to": iso(g.last_at)}
                    for g in s.gaps
                ],
            }
        return JSONResponse(body, code)

    async def api_policies(request: Request) -> Response:
        return JSONResponse([s.to_dict() for s in store.policies()])

    async def api_decisions(request: Request) -> Response:
        policy = request.query_params.get("policy") or None
        since = _time_param(request, "since")
        until = _time_param(request, "until")
        limit = _int_param(request, "limit", 100, 0, MAX_LIMIT)
        records = store.decision_records(policy, since=since, until=until, limit=limit)
        return Response("[" + ",".join(records) + "]", media_type="application/json")

    async def overview(request: Request) -> Response:
        rows = []
        for s in store.policies():
            recent = store.decision_records(s.policy, limit=SPARK_POINTS)
            desired = [int(json.loads(r)["desiredReplicas"]) for r in reversed(recent)]
            rows.append({"s": s, "spark": sparkline(desired)})
        return page(request, "overview.html", rows=rows)

    async def policy_page(request: Request) -> Response:
        ns, name = request.path_params["namespace"], request.path_params["name"]
        policy = name if ns == "-" else f"{ns}/{name}"
        summaries = {s.policy: s for s in store.policies()}
        summary = summaries.get(policy)
        if summary is None:
            return page(request, "error.html", 404, message=f"no decisions for policy {policy!r}")
        since = _time_param(request, "since")
        until = _time_param(request, "until")
        hours = _int_param(request, "hours", 24, 1, 24 * 365)
        if until is None:  # the minute after the newest decision (fits datetime-local inputs)
            until = summary.last_at.replace(second=0, microsecond=0) + timedelta(minutes=1)
        if since is None:
            try:
                since = until - timedelta(hours=hours)
            except OverflowError:
                raise BadParam(f"until: {iso(until)} is less than {hours} h after year 1") from None
        if since >= until:
            raise BadParam(f"since: {iso(since)} is not before until {iso(until)}")
        records = [
            json.loads(r)
            for r in store.decision_records(policy, since=since, until=until, limit=CHART_POINTS)
        ]
        twins = [
            s
            for s in summaries.values()
            if s.policy != policy
            and s.target is not None
            and s.target == summary.target
            and s.namespace == summary.namespace  # a target is namespaced
        ]
        twin_series = []
        for t in twins:
            tds = [
                json.loads(r)
                for r in store.decision_records(
                    t.policy, since=since, until=until, limit=CHART_POINTS
                )
            ]
            twin_series.append(
                {
                    "policy": t.policy,
                    "mode": t.mode,
                    "t": [d["at"] for d in reversed(tds)],
                    "desired": [d["desiredReplicas"] for d in reversed(tds)],
                }
            )
        return page(
            request,
            "policy.html",
            s=summary,
            twins=twins,
            decisions=[Decision.from_dict(r) for r in records[:TABLE_ROWS]],
            shown=min(len(records), TABLE_ROWS),
            total=len(records),
            truncated=len(records) >= CHART_POINTS,
            since=since,
            until=until,
            since_value=_local(since),
            until_value=_local(until),
            ranges=[("1h", 1), ("6h", 6), ("24h", 24), ("7d", 168)],
            chart=chart_data(records, twin_series, (since, until)),
        )

    async def plotly(request: Request) -> Response:
        return FileResponse(
            plotly_js(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    routes = [
        Route("/", guarded(overview, api=False), methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/api/policies", guarded(api_policies, api=True), methods=["GET"]),
        Route("/api/decisions", guarded(api_decisions, api=True), methods=["GET"]),
        Route(
            "/policies/{namespace}/{name:path}", guarded(policy_page, api=False), methods=["GET"]
        ),
        Route("/static/plotly.min.js", plotly, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    return Guard(app, Auth(auth_token or None, trusted_header or None))


def _local(dt: datetime) -> str:
    """Value for an `<input type=datetime-local>` (UTC, minute precision)."""
    return utc(dt).strftime("%Y-%m-%dT%H:%M")


def chart_data(
    records: list[dict[str, Any]], twins: list[dict[str, Any]], window: tuple[datetime, datetime]
) -> dict[str, Any]:
    """What app.js draws from decision records (newest first, as stored): capacity with its
    min/max band, decision markers with reasons, one value-vs-target series per metric."""
    ds = list(reversed(records))  # oldest first
    metrics: dict[str, dict[str, list[Any]]] = {}
    for d in ds:
        for m in d.get("metrics", ()):
            series = metrics.setdefault(
                m["name"], {"t": [], "value": [], "target": [], "status": []}
            )
            series["t"].append(d["at"])
            series["value"].append(m.get("value"))
            series["target"].append(m.get("target"))
            series["status"].append(m.get("status"))
    events = [
        {
            "t": d["at"],
            "desired": d["desiredReplicas"],
            "current": d["currentReplicas"],
            "applied": bool(d.get("applied")),
            "reasons": list(d.get("reasons", ())),
        }
        for d in ds
        if d["desiredReplicas"] != d["currentReplicas"]
    ]
    return {
        "capacity": {
            "t": [d["at"] for d in ds],
            "current": [d["currentReplicas"] for d in ds],
            "desired": [d["desiredReplicas"] for d in ds],
            "min": [d.get("minReplicas") for d in ds],
            "max": [d.get("maxReplicas") for d in ds],
        },
        "events": events,
        "metrics": [{"name": k, **v} for k, v in metrics.items()],
        "twins": twins,
        "range": [iso(window[0]), iso(window[1])],
    }
