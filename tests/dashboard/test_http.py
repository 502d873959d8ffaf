"""The dashboard over real HTTP (uvicorn + httpx): JSON API, pages, safety, auth, path prefix."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from gemini.dashboard import create_app
from gemini.policy.decision import Decision
from gemini.store import DecisionStore, StoreError
from gemini.store.buffered import BufferedWriter
from gemini.store.memory import MemoryStore
from tests.dashboard.conftest import HOSTILE, serve
from tests.store.factory import decision

Live = Callable[[Any], str]


@pytest.fixture(scope="module")
def url(store: DecisionStore) -> Iterator[str]:
    srv = serve(create_app(store, title="gemini test"))
    yield srv.url
    srv.stop()


def test_api_policies_lists_every_policy_with_the_contract_keys(url: str) -> None:
    body = httpx.get(f"{url}/api/policies").json()
    by = {f"{p['namespace']}/{p['name']}": p for p in body}
    assert set(by) == {"shop/web", "shop/web-shadow", "sim/nasa-web-web", HOSTILE, "ops/broken"}
    web = by["shop/web"]
    for key in [
        "target",
        "mode",
        "currentReplicas",
        "desiredReplicas",
        "lastDecisionAt",
        "lastReasons",
    ]:
        assert key in web
    assert (web["minReplicas"], web["maxReplicas"], web["health"]) == (2, 20, "ok")
    assert web["lastDecisionAt"] == "2026-03-02T11:55:00Z"
    assert by["ops/broken"]["health"] == "failing"
    assert by["shop/web-shadow"]["mode"] == "Shadow"


def test_api_decisions_newest_first_with_filters(url: str) -> None:
    got = httpx.get(
        f"{url}/api/decisions",
        params={"policy": "shop/web", "since": "2026-03-02T11:00:00Z", "limit": "5"},
    ).json()
    assert [d["at"] for d in got] == [f"2026-03-02T11:{m:02d}:00Z" for m in (55, 50, 45, 40, 35)]
    for key in [
        "at",
        "policy",
        "currentReplicas",
        "desiredReplicas",
        "applied",
        "reasons",
        "metrics",
    ]:
        assert key in got[0]
    assert Decision.from_dict(got[0]).policy == "shop/web"
    window = httpx.get(
        f"{url}/api/decisions",
        params={
            "policy": "shop/web",
            "since": "2026-03-02T00:00:00Z",
            "until": "2026-03-02T01:00:00Z",
            "limit": "1000",
        },
    ).json()
    assert len(window) == 12
    everything = httpx.get(f"{url}/api/decisions", params={"limit": "10000"}).json()
    assert len(everything) == 2 * 288 + 30 + 2


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param(
            {"since": "yesterday"}, "since: not an ISO-8601 time: 'yesterday'", id="since"
        ),
        pytest.param({"until": "2026-13-01"}, "until: not an ISO-8601 time", id="until"),
        pytest.param({"limit": "many"}, "limit: not an integer: 'many'", id="limit-text"),
        pytest.param({"limit": "-1"}, "limit: -1 is outside 0..10000", id="limit-negative"),
        pytest.param({"limit": "10001"}, "limit: 10001 is outside", id="limit-big"),
    ],
)
def test_bad_query_parameters_are_400_naming_the_field(
    url: str, params: dict[str, str], message: str
) -> None:
    r = httpx.get(f"{url}/api/decisions", params=params)
    assert r.status_code == 400
    assert message in r.json()["error"]


def test_overview_shows_every_policy_and_escapes_hostile_values(url: str) -> None:
    r = httpx.get(f"{url}/")
    assert r.status_code == 200
    page = r.text
    for p in ["shop/web", "shop/web-shadow", "sim/nasa-web-web", "ops/broken"]:
        assert f">{p}</a>" in page
    assert "<script>alert(1)" not in page
    assert "<img src=x" not in page
    assert html.escape(HOSTILE, quote=False) in page
    assert page.count('<polyline points="') == 5
    assert 'class="health health-failing"' in page


def test_policy_page_has_chart_data_table_and_twin(url: str) -> None:
    r = httpx.get(f"{url}/policies/shop/web")
    assert r.status_code == 200
    page = r.text
    data = json.loads(
        html.unescape(re.search(r'id="chart-data">(.*?)</script>', page, re.S).group(1))  # type: ignore[union-attr]
    )
    assert len(data["capacity"]["t"]) == 288  # the default window: the last 24 h of decisions
    assert [m["name"] for m in data["metrics"]] == ["rps"]
    assert [t["policy"] for t in data["twins"]] == ["shop/web-shadow"]
    assert all(e["desired"] != e["current"] for e in data["events"])
    assert page.count('<tr class="decision-row') == 200
    assert "metrics → " in page and "DesiredWithinRange" in page  # every clipping step
    assert "(30 s old)" in page  # sample ages


def test_a_forecast_input_says_how_far_back_it_was_read(live: Live) -> None:
    """A metric read with `offsetSeconds` looks 30 s old (its time is the moved one); the row
    says the value is from 23 h back, and a present-time metric says nothing of the kind."""
    store = MemoryStore()
    store.write_many([decision("shop/web", 0.0, offset=82800), decision("shop/api", 0.0)])
    url = live(create_app(store))
    web = httpx.get(f"{url}/policies/shop/web").text
    assert "(30 s old)" in web and "(read 23 h back)" in web
    assert "back)" not in httpx.get(f"{url}/policies/shop/api").text


def test_policy_page_time_range_filter(url: str) -> None:
    page = httpx.get(
        f"{url}/policies/shop/web",
        params={"since": "2026-03-02T10:00", "until": "2026-03-02T11:00"},
    ).text
    assert page.count('<tr class="decision-row') == 12
    assert (
        httpx.get(f"{url}/policies/shop/web", params={"hours": "1"}).text.count(
            '<tr class="decision-row'
        )
        == 12
    )
    bad = httpx.get(
        f"{url}/policies/shop/web",
        params={"since": "2026-03-03T00:00", "until": "2026-03-02T00:00"},
    )
    assert bad.status_code == 400
    assert "since: 2026-03-03T00:00:00Z is not before until" in html.unescape(bad.text)
    early = httpx.get(f"{url}/policies/shop/web", params={"until": "0001-01-01T00:30"})
    assert early.status_code == 400
    assert "until: 0001-01-01T00:30:00Z is less than 24 h after year 1" in html.unescape(early.text)


def test_hostile_policy_page_shows_the_name_as_text(url: str) -> None:
    policies = httpx.get(f"{url}/").text
    href = re.search(r'href="(/policies/default/[^"]+)"', policies).group(1)  # type: ignore[union-attr]
    r = httpx.get(f"{url}{href}")
    assert r.status_code == 200
    assert "<script>alert(1)" not in r.text
    assert f'<h1 id="policy-name">{html.escape(HOSTILE)}</h1>' in r.text
    block = re.search(r'id="chart-data">(.*?)</script>', r.text, re.S).group(1)  # type: ignore[union-attr]
    assert "<" not in block


def test_unknown_policy_is_404(url: str) -> None:
    r = httpx.get(f"{url}/policies/nope/missing")
    assert r.status_code == 404
    assert "no decisions for policy &#39;nope/missing&#39;" in r.text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/", "/api/policies", "/api/decisions", "/policies/shop/web"])
def test_read_only(url: str, method: str, path: str) -> None:
    assert httpx.request(method, f"{url}{path}").status_code == 405


def test_security_headers(url: str) -> None:
    r = httpx.get(f"{url}/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_plotly_is_served_locally(url: str) -> None:
    r = httpx.get(f"{url}/static/plotly.min.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert len(r.content) > 1_000_000
    page = httpx.get(f"{url}/policies/shop/web").text
    assert "http://" not in re.sub(r'href="http[^"]*"', "", page.split("<main>")[0])
    assert 'src="/static/plotly.min.js"' in page


@pytest.mark.parametrize(
    ("token", "header", "request_headers", "status"),
    [
        pytest.param("s3cret", None, {}, 401, id="token-missing"),
        pytest.param("s3cret", None, {"Authorization": "Bearer wrong"}, 401, id="token-wrong"),
        pytest.param("s3cret", None, {"Authorization": "Basic s3cret"}, 401, id="token-not-bearer"),
        pytest.param("s3cret", None, {"Authorization": "Bearer s3cret"}, 200, id="token-ok"),
        pytest.param(None, "X-Forwarded-User", {}, 401, id="header-missing"),
        pytest.param(None, "X-Forwarded-User", {"X-Forwarded-User": ""}, 401, id="header-empty"),
        pytest.param(None, "X-Forwarded-User", {"X-Forwarded-User": "ann"}, 200, id="header-ok"),
        pytest.param("s3cret", "X-Forwarded-User", {"X-Forwarded-User": "ann"}, 200, id="either"),
        pytest.param(None, None, {}, 200, id="open"),
    ],
)
def test_auth(
    store: DecisionStore,
    live: Live,
    token: str | None,
    header: str | None,
    request_headers: dict[str, str],
    status: int,
) -> None:
    url = live(create_app(store, auth_token=token, trusted_header=header))
    for path in ["/", "/api/policies", "/api/decisions", "/policies/shop/web"]:
        assert httpx.get(f"{url}{path}", headers=request_headers).status_code == status, path
    # health and static assets stay reachable for probes
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert httpx.get(f"{url}/static/app.js").status_code == 200


def _links(page: str) -> list[str]:
    return re.findall(r'(?:href|src)="([^"?]+)', page)


@pytest.mark.parametrize(
    ("how", "prefix"),
    [
        pytest.param("root_path", "/gemini", id="root-path-argument"),
        pytest.param("forwarded", "/team/gemini", id="x-forwarded-prefix"),
        pytest.param("mount", "/dash", id="mounted"),
    ],
)
def test_works_behind_a_path_prefix(
    store: DecisionStore, live: Live, how: str, prefix: str
) -> None:
    headers = {}
    if how == "root_path":
        url = live(create_app(store, root_path=prefix))
        get = url
    elif how == "forwarded":
        url = live(create_app(store))
        get = url
        headers = {"X-Forwarded-Prefix": prefix}
    else:
        url = live(Starlette(routes=[Mount(prefix, app=create_app(store))]))
        get = url + prefix
    for path in ["/", "/policies/shop/web"]:
        page = httpx.get(f"{get}{path}", headers=headers).text
        links = [link for link in _links(page) if link.startswith("/")]
        assert links, path
        assert all(link.startswith(prefix + "/") for link in links), links
    if how == "mount":  # the prefixed links resolve
        for link in _links(httpx.get(f"{get}/").text):
            if link.startswith("/"):
                assert httpx.get(f"{url}{link}").status_code == 200, link


def test_a_hostile_forwarded_prefix_is_ignored(url: str) -> None:
    page = httpx.get(
        f"{url}/", headers={"X-Forwarded-Prefix": '/x"><script>alert(3)</script>'}
    ).text
    assert "alert(3)" not in page
    assert 'href="/static/style.css"' in page


def test_bad_root_path_is_refused(store: DecisionStore) -> None:
    with pytest.raises(ValueError, match="root_path 'gemini'"):
        create_app(store, root_path="gemini")


class DownStore(MemoryStore):
    def ping(self) -> None:
        raise StoreError("store postgresql://db unreachable: connection refused")

    def policies(self) -> list[Any]:
        raise StoreError("store postgresql://db unreachable: connection refused")

    def write_many(self, decisions: Sequence[Decision]) -> None:
        raise ConnectionError("connection refused")


def test_health_reports_store_outage_and_writer_gap(live: Live) -> None:
    store = DownStore()
    writer = BufferedWriter(store, max_buffer=2, flush_interval=0.01, retry_seconds=0.01)
    for i in range(5):
        writer.record(decision(at=float(i)))
    url = live(create_app(store, writer_stats=writer.stats))
    r = httpx.get(f"{url}/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "store unreachable"
    assert body["writer"]["dropped"] == 3
    assert body["writer"]["gaps"] == [
        {"dropped": 3, "from": "2026-03-01T12:00:02Z", "to": "2026-03-01T12:00:04Z"}
    ]
    assert httpx.get(f"{url}/api/policies").status_code == 503
    page = httpx.get(f"{url}/")
    assert page.status_code == 503 and "unreachable" in page.text
    writer.close(timeout=0.1)


class WriteOutage(MemoryStore):
    """Reads work, writes fail: the controller's buffer fills and drops decisions."""

    def write_many(self, decisions: Sequence[Decision]) -> None:
        raise ConnectionError("connection refused")


def test_pages_report_the_recording_gap(live: Live) -> None:
    store = WriteOutage()
    MemoryStore.write_many(store, [decision(at=0.0)])
    writer = BufferedWriter(store, max_buffer=2, flush_interval=0.01, retry_seconds=0.01)
    for i in range(1, 6):
        writer.record(decision(at=float(i)))
    url = live(create_app(store, writer_stats=writer.stats))
    expected = (
        "3 decisions were not recorded (decision store unavailable) between "
        "2026-03-01T12:00:03Z and 2026-03-01T12:00:05Z."
    )
    for path in ["/", "/policies/shop/web"]:
        assert expected in httpx.get(f"{url}{path}").text, path
    healthy = live(create_app(store))
    assert "not recorded" not in httpx.get(f"{healthy}/").text
    writer.close(timeout=0.1)


def test_a_sql_store_that_went_away_is_a_503_not_a_500(live: Live, tmp_path: Any) -> None:
    import shutil

    from gemini.store import open_store

    folder = tmp_path / "gone"
    store = open_store(f"sqlite:///{folder / 'x.sqlite'}")
    store.write_many([decision()])
    url = live(create_app(store))
    assert httpx.get(f"{url}/api/policies").status_code == 200
    store.engine.dispose()  # type: ignore[attr-defined]
    shutil.rmtree(folder)
    assert httpx.get(f"{url}/api/policies").status_code == 503
    assert httpx.get(f"{url}/api/decisions").status_code == 503
    page = httpx.get(f"{url}/")
    assert page.status_code == 503 and "unreachable" in page.text
    store.close()
