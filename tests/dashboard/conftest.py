"""Dashboard fixtures: a populated store and the app served by a real uvicorn on a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import uvicorn

from gemini.policy.decision import MetricStatus
from gemini.store import DecisionStore, open_store
from tests.store.factory import T0, decision

HOSTILE = "default/<script>alert(1)</script>"


def populate(store: DecisionStore) -> None:
    """A day of decisions for an active policy, its shadow twin, a simulation run, a hostile name."""
    ds = []
    for i in range(24 * 12):  # every 5 minutes
        load = 300 + 250 * ((i % 96) / 96)
        desired = max(2, min(20, round(load / 100)))
        current = ds[-4].desired if len(ds) >= 4 else 3
        at = T0 + timedelta(minutes=5 * i)
        ds.append(
            decision(
                "shop/web",
                at,
                current=current,
                desired=desired,
                applied=desired != current,
                reasons=("ScaleUp",) if desired > current else ("NoChange",),
                value=load / max(current, 1),
            )
        )
        ds.append(
            decision(
                "shop/web-shadow",
                at,
                current=current,
                desired=max(2, desired - 1),
                applied=False,
                mode="Shadow",
                reasons=("ShadowMode",),
            )
        )
    ds += [decision("sim/nasa-web-web", float(i * 60), desired=3 + i % 5) for i in range(30)]
    ds += [
        decision(HOSTILE, 10.0, target="<img src=x onerror=alert(2)>"),
        decision(
            "ops/broken",
            20.0,
            status=MetricStatus.ERROR,
            reasons=("NoValidMetrics",),
            applied=False,
            target="apps/v1/Deployment/broken",
        ),
    ]
    store.write_many(ds)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DecisionStore]:
    """Shared by a module's tests: the dashboard never writes."""
    s = open_store(f"sqlite:///{tmp_path_factory.mktemp('dash') / 'dash.sqlite'}")
    populate(s)
    yield s
    s.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Live:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def serve(app: Any) -> Live:
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return Live(f"http://127.0.0.1:{port}", server, thread)


@pytest.fixture
def live() -> Iterator[Any]:
    """Call `live(app)` to serve an app; every server is stopped after the test."""
    started: list[Live] = []

    def start(app: Any) -> str:
        srv = serve(app)
        started.append(srv)
        return srv.url

    yield start
    for srv in started:
        srv.stop()
