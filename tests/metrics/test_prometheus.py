"""Prometheus source against a REAL Prometheus server (Debian's binary, started by the session
fixture, scraping an in-process exporter every second), plus a small HTTP stub of the query API
for answers a real server will not give on demand (auth failures, 429/503, slow answers)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gemini.metrics import MetricRequest
from gemini.metrics.prometheus import PrometheusSource
from tests.fakes.prometheus_server import QueryStub, free_port
from tests.metrics.conftest import metric, request

pytestmark = pytest.mark.prometheus


def prom(url: str, query: str, **kw: Any) -> dict[str, Any]:
    return {"prometheus": {"serverAddress": url, "query": query, **kw}}


@pytest.mark.parametrize(
    ("query", "value", "kind"),
    [
        pytest.param("sum(gemini_test_backlog)", 1234.0, None, id="one-element-vector"),
        pytest.param("scalar(sum(gemini_test_zone_load))", 3.0, None, id="scalar"),
        pytest.param('gemini_test_zone_load{zone="b"}', 2.0, None, id="labelled-series"),
        pytest.param('gemini_test_zone_load{zone="nope"}', None, "empty", id="empty-vector"),
        pytest.param("gemini_test_zone_load", None, "invalid", id="two-series"),
        pytest.param("sum(", None, "invalid", id="bad-promql"),
        pytest.param("vector(0) / 0", None, "invalid", id="nan"),
        pytest.param("vector(1) / 0", None, "invalid", id="inf"),
    ],
)
def test_instant_queries_against_real_prometheus(
    prometheus: tuple[str, Any], query: str, value: float | None, kind: str | None
) -> None:
    url, _ = prometheus
    now = datetime.now(UTC)
    src = PrometheusSource()
    [obs] = src.fetch([request("m", prom(url, query))], now)
    src.close()
    if kind is None:
        assert obs.ok, obs.error
        assert obs.latest is not None and obs.latest.value == value
        assert obs.latest.at <= now
    else:
        assert obs.error_kind == kind, obs
        assert obs.metric == "m"


def test_identical_queries_are_sent_once(prometheus: tuple[str, Any]) -> None:
    url, _ = prometheus
    src = PrometheusSource()
    out = src.fetch(
        [request(f"m{i}", prom(url, "sum(gemini_test_backlog)"), f"ns/p{i}") for i in range(3)],
        datetime.now(UTC),
    )
    assert [o.metric for o in out] == ["m0", "m1", "m2"]
    assert all(o.latest and o.latest.value == 1234.0 for o in out)
    src.close()


def test_unreachable_server_is_unavailable() -> None:
    src = PrometheusSource()
    [obs] = src.fetch(
        [request("m", prom(f"http://127.0.0.1:{free_port()}", "up"))], datetime.now(UTC)
    )
    assert obs.error_kind == "unavailable"


@pytest.fixture
def stub() -> Iterator[QueryStub]:
    answers: dict[str, tuple[int, Any, float]] = {}

    def respond(
        path: str, params: dict[str, list[str]], headers: dict[str, str]
    ) -> tuple[int, Any, float]:
        query = params.get("query", [""])[0]
        if query == "needs-token":
            if headers.get("authorization") != "Bearer s3cret":
                return 401, {"status": "error", "error": "unauthorized"}, 0.0
            return (
                200,
                {"status": "success", "data": {"resultType": "scalar", "result": [1, "7"]}},
                0.0,
            )
        return answers.get(query, (500, {"status": "error"}, 0.0))

    s = QueryStub(respond)
    s.answers = answers  # type: ignore[attr-defined]
    yield s
    s.stop()


@pytest.mark.parametrize(
    ("status", "body", "delay", "kind"),
    [
        pytest.param(403, {"status": "error", "error": "forbidden"}, 0.0, "permission", id="403"),
        pytest.param(429, {"status": "error", "error": "slow down"}, 0.0, "quota", id="429"),
        pytest.param(503, b"overloaded", 0.0, "unavailable", id="503-not-json"),
        pytest.param(
            422,
            {"status": "error", "errorType": "execution", "error": "x"},
            0.0,
            "invalid",
            id="422",
        ),
        pytest.param(
            200,
            {"status": "success", "data": {"resultType": "matrix", "result": []}},
            0.0,
            "invalid",
            id="matrix",
        ),
        pytest.param(
            200,
            {"status": "success", "data": {"resultType": "scalar", "result": [1, "5"]}},
            1.0,
            "deadline",
            id="slow-answer",
        ),
        pytest.param(
            200,
            {"status": "success", "data": {"resultType": "vector", "result": ["x"]}},
            0.0,
            "invalid",
            id="vector-of-strings",
        ),
        pytest.param(
            200,
            {"status": "success", "data": {"resultType": "vector", "result": [{"value": 1}, 2]}},
            0.0,
            "invalid",
            id="two-malformed-series",
        ),
        pytest.param(
            200,
            {"status": "success", "data": {"resultType": "scalar", "result": [1e300, "2"]}},
            0.0,
            "invalid",
            id="timestamp-out-of-range",
        ),
    ],
)
def test_http_failures_are_typed(
    stub: QueryStub, status: int, body: Any, delay: float, kind: str
) -> None:
    stub.answers["q"] = (status, body, delay)  # type: ignore[attr-defined]
    src = PrometheusSource()
    [obs] = src.fetch([request("m", prom(stub.url, "q", timeoutSeconds=0.3))], datetime.now(UTC))
    assert obs.error_kind == kind, obs
    if kind == "permission":
        assert "roles/monitoring.viewer" in (obs.error or "")
    src.close()


def test_bearer_token_file_is_sent_and_reread(stub: QueryStub, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("wrong\n")
    src = PrometheusSource()
    req = request("m", prom(stub.url, "needs-token", auth={"bearerTokenFile": str(token)}))
    now = datetime.now(UTC)
    [denied] = src.fetch([req], now)
    assert denied.error_kind == "permission"
    token.write_text("s3cret\n")  # rotated
    [ok] = src.fetch([req], now)
    assert ok.latest is not None and ok.latest.value == 7.0
    assert stub.requests[-1][1]["time"] == [f"{now.timestamp():.3f}"]
    missing = request(
        "m", prom(stub.url, "needs-token", auth={"bearerTokenFile": str(tmp_path / "no")})
    )
    [err] = src.fetch([missing], now)
    assert err.error_kind == "permission" and "bearer token file" in (err.error or "")
    src.close()


def test_google_auth_without_credentials_is_a_permission_failure(
    stub: QueryStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    src = PrometheusSource()
    [obs] = src.fetch([request("m", prom(stub.url, "q", auth={"google": True}))], datetime.now(UTC))
    assert obs.error_kind == "permission"
    assert "roles/monitoring.viewer" in (obs.error or "")
    assert stub.requests == []  # nothing sent without a token
    src.close()


def test_a_metric_window_is_read_as_a_range_from_real_prometheus(
    prometheus: tuple[str, Any],
) -> None:
    """`windowSeconds` > 0: a range query over the window, one point per 15 s grid step ending
    now, so the engine's reduction (Max over the window) sees the span, as in the simulator.
    An instant query returned one point: a window had no effect on a Prometheus metric."""
    import time

    url, _ = prometheus
    m = metric("m", prom(url, "sum(gemini_test_backlog)"), windowSeconds=45, windowFunction="Max")
    src = PrometheusSource()
    # the session's server may have started a moment ago: wait until a window's worth of
    # scrapes holds more than one grid point (a second or 15 s at most)
    deadline = time.monotonic() + 40
    while True:
        now = datetime.now(UTC)
        [obs] = src.fetch([MetricRequest("default/p", "default", m)], now)
        if (obs.ok and len(obs.samples) > 1) or time.monotonic() > deadline:
            break
        time.sleep(1)
    src.close()
    assert obs.ok, obs.error
    times = [s.at.timestamp() for s in obs.samples]
    # on the 15 s grid that ends now (the newest point is as fresh as an instant query's)
    assert times[-1] == pytest.approx(now.timestamp(), abs=0.001)
    assert len(times) > 1
    assert all(
        now.timestamp() - t == pytest.approx(15 * round((now.timestamp() - t) / 15), abs=0.001)
        for t in times
    )
    assert {s.value for s in obs.samples} == {1234.0}


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        pytest.param({"resultType": "matrix", "result": []}, "empty", id="no-series"),
        pytest.param(
            {"resultType": "matrix", "result": [{"values": [[1, "1"]]}, {"values": [[1, "2"]]}]},
            "invalid",
            id="two-series",
        ),
        pytest.param({"resultType": "vector", "result": []}, "invalid", id="not-a-matrix"),
        pytest.param(
            {"resultType": "matrix", "result": [{"values": [[1, "NaN"]]}]}, "invalid", id="nan"
        ),
        pytest.param(
            {"resultType": "matrix", "result": [{"values": [["x", "1"]]}]}, "invalid", id="bad-time"
        ),
    ],
)
def test_range_answers_are_checked(stub: QueryStub, body: dict[str, Any], kind: str) -> None:

    stub.answers["q"] = (200, {"status": "success", "data": body}, 0.0)  # type: ignore[attr-defined]
    m = metric("m", prom(stub.url, "q"), windowSeconds=600)
    src = PrometheusSource()
    now = datetime.now(UTC)
    [obs] = src.fetch([MetricRequest("default/p", "default", m)], now)
    src.close()
    assert obs.error_kind == kind, obs
    path, params = stub.requests[-1][0], stub.requests[-1][1]
    assert path.endswith("/api/v1/query_range") and params["step"] == ["15"]
    assert float(params["end"][0]) - float(params["start"][0]) == pytest.approx(600)
