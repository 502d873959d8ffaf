"""The ops HTTP server (real uvicorn in a thread, real HTTP): health, readiness (synced cache; a
standby is ready too), Prometheus text, and the dashboard mounted at `/` when given."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gemini.controller.server import HttpServer, create_ops_app
from gemini.controller.telemetry import Telemetry


@contextmanager
def serving(app: Any) -> Iterator[str]:
    server = HttpServer(app, "127.0.0.1", 0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("content-type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read().decode()


def test_readyz_follows_the_cache_sync_and_reports_leadership() -> None:
    state = {"ready": False}
    app = create_ops_app(Telemetry().registry, lambda: state["ready"], lambda: {"leader": False})
    with serving(app) as url:
        assert get(f"{url}/healthz")[0] == 200
        code, _, body = get(f"{url}/readyz")
        assert code == 503 and json.loads(body) == {"ready": False, "leader": False}
        state["ready"] = True
        code, _, body = get(f"{url}/readyz")
        assert code == 200 and json.loads(body)["ready"] is True  # a standby is ready too


def test_metrics_are_prometheus_text() -> None:
    t = Telemetry()
    t.leader.set(1)
    t.desired.labels("ns", "web").set(4)
    with serving(create_ops_app(t.registry, lambda: True, dict)) as url:
        code, ctype, body = get(f"{url}/metrics")
    assert code == 200 and ctype.startswith("text/plain")
    assert "gemini_leader 1.0" in body
    assert 'gemini_desired_capacity{namespace="ns",policy="web"} 4.0' in body


def test_dashboard_is_mounted_at_root_without_hiding_ops_routes() -> None:
    async def home(_: Request) -> PlainTextResponse:
        return PlainTextResponse("dashboard")

    dash = Starlette(routes=[Route("/", home)])
    with serving(create_ops_app(Telemetry().registry, lambda: True, dict, dash)) as url:
        assert get(f"{url}/")[2] == "dashboard"
        assert get(f"{url}/healthz")[2] == "ok"


def test_a_deleted_policy_leaves_no_series_behind() -> None:
    from datetime import UTC, datetime

    from prometheus_client import generate_latest

    from gemini.loop import TickResult
    from gemini.policy.decision import Decision, MetricResult, MetricStatus
    from gemini.policy.state import PolicyState

    def result(policy: str) -> TickResult:
        metric = MetricResult("qps", MetricStatus.OK, 10.0, age_seconds=3.0, target=5.0)
        decision = Decision(
            f"ns/{policy}", datetime(2026, 3, 2, tzinfo=UTC), "Active", 2, 4, 4, 1, 10,
            ("ScaleUp",), (metric,), applied=True, outcome="applied",
        )  # fmt: skip
        return TickResult(f"ns/{policy}", PolicyState(), decision)

    t = Telemetry()
    t.observe("ns", "web", result("web"))
    t.observe("ns", "api", result("api"))
    t.forget("ns", "web")
    body = generate_latest(t.registry).decode()
    assert 'policy="web"' not in body
    assert body.count('policy="api"') >= 6  # desired, current, value, target, age, decisions...
