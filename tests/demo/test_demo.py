"""`gemini demo`: the real process runs, serves its dashboard and API while it runs, records
decisions with reasons for all its policies, and exits 0 on its own after --duration.

Also takes the README's screenshot of the demo's dashboard in Debian's Chromium.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gemini.demo import DemoWorld, load_policies
from gemini.demo.load import DEMO_START, demand
from gemini.metrics import MetricRequest
from tests.conftest import need_binary

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def wait_for_decisions(base: str, deadline: float) -> list[dict[str, Any]]:
    policies: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            policies = get_json(base + "api/policies")
        except OSError:
            policies = []
        if len(policies) >= 3:
            return policies
        time.sleep(0.3)
    return policies


def start_demo(port: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gemini", "demo", "--port", str(port), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_demo_runs_serves_decisions_and_stops_by_itself() -> None:
    port = free_port()
    proc = start_demo(port, "--duration", "12", "--speed", "300")
    base = f"http://127.0.0.1:{port}/"
    try:
        policies = wait_for_decisions(base, time.monotonic() + 20)
        names = sorted(p["name"] for p in policies)
        assert names == ["orders-bigtable", "pubsub-worker", "pubsub-worker-steps"]
        modes = {p["name"]: p["mode"] for p in policies}
        assert modes["pubsub-worker-steps"] == "Shadow"
        for p in policies:
            assert p["namespace"] == "demo" and p["lastReasons"], p
        decisions = get_json(base + "api/decisions?policy=demo/pubsub-worker&limit=5")
        assert decisions and all(d["reasons"] and d["metrics"] for d in decisions)
        assert get_json(base + "readyz")["ready"] is True
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert f"dashboard at {base}" in out
    assert "gemini demo: stopped after" in out


def test_demo_stops_cleanly_on_ctrl_c() -> None:
    port = free_port()
    proc = start_demo(port, "--speed", "300")
    try:
        wait_for_decisions(f"http://127.0.0.1:{port}/", time.monotonic() + 20)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "Traceback" not in out


def test_policies_shipped_with_the_demo_are_valid_and_cover_the_issue() -> None:
    policies = {p.metadata.name: p for p in load_policies()}
    assert policies["pubsub-worker"].spec.target.kubernetes is not None
    assert policies["orders-bigtable"].spec.target.bigtable is not None
    assert policies["pubsub-worker-steps"].spec.mode.value == "Shadow"


def test_world_is_closed_loop_and_metrics_arrive_late() -> None:
    world = DemoWorld(DEMO_START)
    backlog = next(m for m in load_policies()[0].spec.metrics if m.name == "backlog")
    req = MetricRequest("demo/pubsub-worker", "demo", backlog)
    # nothing is visible before the first sample has aged past the metric delay
    assert world.read([req], DEMO_START)[0].samples == ()
    later = DEMO_START.replace(minute=10)
    [obs] = world.read([req], later)
    assert obs.samples and all(s.at.timestamp() <= later.timestamp() - 60 for s in obs.samples)
    # two workers cannot keep up with ~375 msg/s: the backlog grows
    assert obs.samples[-1].value > 0
    world.workers.set_count(20, later.timestamp())
    [after] = world.read([req], later.replace(minute=30))
    assert after.samples[-1].value < obs.samples[-1].value


def test_generated_load_has_a_daily_cycle_and_bursts() -> None:
    day = [demand(DEMO_START.replace(hour=h)) for h in range(24)]
    assert max(day) > 2.5 * min(day)
    burst = demand(DEMO_START.replace(hour=7, minute=5))  # 1 h into a 5 h cycle: a burst
    assert burst > demand(DEMO_START.replace(hour=7, minute=20)) * 2


@pytest.mark.browser
def test_screenshot_of_the_demo_dashboard() -> None:
    chromium = need_binary("/usr/bin/chromium", "chromium")
    from playwright.sync_api import sync_playwright

    port = free_port()
    proc = start_demo(port, "--duration", "40", "--speed", "600")
    base = f"http://127.0.0.1:{port}/"
    try:
        assert len(wait_for_decisions(base, time.monotonic() + 20)) == 3
        time.sleep(8)  # let a few simulated hours of decisions accumulate
        args = [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=args)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(base)
            assert page.get_by_text("pubsub-worker-steps").count() >= 1
            page.goto(base + "policies/demo/pubsub-worker?hours=2")
            page.wait_for_selector("svg", timeout=15000)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "demo-dashboard.png"))
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert (ARTIFACTS / "demo-dashboard.png").stat().st_size > 10_000


def test_port_in_use_is_a_clear_error_and_leaves_nothing_behind() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = start_demo(port, "--duration", "5")
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, out
    assert "Traceback" not in out and "gemini demo:" in out
