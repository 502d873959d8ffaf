"""The dashboard in a real browser: Playwright driving Debian's Chromium (headless)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gemini.dashboard import create_app
from gemini.store import DecisionStore
from tests.conftest import need_binary
from tests.dashboard.conftest import HOSTILE, serve

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = need_binary("/usr/bin/chromium", "chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def base(store: DecisionStore) -> Iterator[str]:
    srv = serve(create_app(store, title="gemini"))
    yield srv.url
    srv.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    p = ctx.new_page()
    problems: list[str] = []
    p.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    p.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    p.on(
        "console",
        lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
    )
    # offline: any request leaving 127.0.0.1 fails the test
    p.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith("http://127.0.0.1")
            else (problems.append(f"external: {route.request.url}"), route.abort())
        ),
    )
    p.problems = problems
    yield p
    ctx.close()


def test_overview_lists_policies_and_links_to_pages(page: Any, base: str) -> None:
    page.goto(f"{base}/")
    rows = page.locator("tr.policy-row")
    assert rows.count() == 5
    names = page.locator("a.policy-link").all_inner_texts()
    assert set(names) == {"shop/web", "shop/web-shadow", "sim/nasa-web-web", HOSTILE, "ops/broken"}
    assert page.locator("svg.spark polyline").count() == 5
    page.get_by_role("link", name="shop/web", exact=True).click()
    page.wait_for_url(f"{base}/policies/shop/web")
    assert page.locator("#policy-name").inner_text() == "shop/web"
    assert page.problems == []


def test_policy_page_draws_charts_and_decision_rows(page: Any, base: str) -> None:
    page.goto(f"{base}/policies/shop/web")
    page.wait_for_selector("body[data-charts=ready]", timeout=20_000)
    assert page.locator("#chart-capacity svg.main-svg").count() >= 1
    assert page.locator("#chart-metric-0 svg.main-svg").count() >= 1
    # current, desired, shadow twin, decision markers are drawn as plotly traces
    legend = page.locator("#chart-capacity .legendtext").evaluate_all(
        "els => els.map(e => e.textContent)"
    )
    assert {"current", "desired", "shop/web-shadow (Shadow)", "decisions"} <= set(legend)
    assert page.locator("tr.decision-row").count() == 200
    first = page.locator("tr.decision-row").first.inner_text()
    assert "2026-03-02T11:55:00Z" in first and "30 s old" in first
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=False)
    assert page.problems == []


def test_time_range_form_filters(page: Any, base: str) -> None:
    page.goto(f"{base}/policies/shop/web")
    page.fill("input[name=since]", "2026-03-02T10:00")
    page.fill("input[name=until]", "2026-03-02T11:00")
    page.click("form.range button")
    page.wait_for_url("**since=2026-03-02T10%3A00**")
    assert page.locator("tr.decision-row").count() == 12
    page.get_by_role("link", name="last 1h").click()
    page.wait_for_url("**hours=1")
    assert page.locator("tr.decision-row").count() == 12


def test_hostile_policy_name_is_shown_as_text(page: Any, base: str) -> None:
    page.goto(f"{base}/")
    assert page.locator("a.policy-link", has_text="alert(1)").inner_text() == HOSTILE
    assert "onerror" in page.locator("tr.policy-row", has_text="alert(1)").inner_text()
    page.locator("a.policy-link", has_text="alert(1)").click()
    page.wait_for_selector("body[data-charts=ready]", timeout=20_000)
    assert page.locator("#policy-name").inner_text() == HOSTILE
    assert page.locator("script:not([src]):not([type='application/json'])").count() == 0
    assert page.locator("img").count() == 0
    assert page.problems == []  # no alert() dialog, no script error
