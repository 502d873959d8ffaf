"""`gemini dashboard --db URL` as a user runs it: a real process serving a store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gemini.store import open_store
from tests.dashboard.conftest import _free_port
from tests.store.factory import decision


def test_serves_a_sqlite_store_with_auth(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'd.sqlite'}"
    store = open_store(db)
    store.write_many([decision("sim/nasa-web-web", float(i)) for i in range(3)])
    store.close()
    port = _free_port()
    env = {**os.environ, "GEMINI_DASHBOARD_TOKEN": "t0ken", "GEMINI_DASHBOARD_ROOT_PATH": "/g"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gemini", "dashboard", "--db", db, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "dashboard did not start"
            time.sleep(0.1)
        assert httpx.get(f"{url}/api/policies").status_code == 401
        auth = {"Authorization": "Bearer t0ken"}
        body = httpx.get(f"{url}/api/policies", headers=auth).json()
        assert [(p["namespace"], p["name"]) for p in body] == [("sim", "nasa-web-web")]
        assert 'href="/g/policies/sim/nasa-web-web"' in httpx.get(f"{url}/", headers=auth).text
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("mysql://db", "unknown scheme 'mysql'", id="scheme"),
        pytest.param("postgresql://nobody@127.0.0.1:1/x", "cannot open", id="unreachable"),
    ],
)
def test_bad_store_url_is_one_clear_line(url: str, message: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "gemini", "dashboard", "--db", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "--db" in lines[0], r.stderr
