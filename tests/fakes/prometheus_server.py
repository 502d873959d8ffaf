"""Start a REAL Prometheus server (Debian's /usr/bin/prometheus) for tests, scraping a tiny
exporter (prometheus_client) started in-process, plus a small HTTP stub of the query API for the
cases a real server cannot produce on demand (bearer-token checks, 401/429/503, slow answers).

Imports nothing from gemini.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Gauge, start_http_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Exporter:
    """A /metrics endpoint on 127.0.0.1 with gauges set from the test."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.backlog = Gauge("gemini_test_backlog", "queued messages", registry=self.registry)
        self.per_zone = Gauge("gemini_test_zone_load", "load", ["zone"], registry=self.registry)
        self._server, self._thread = start_http_server(0, "127.0.0.1", registry=self.registry)
        self.port = int(self._server.server_address[1])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class PrometheusProcess:
    """`prometheus` on a free port with a temp config and storage dir; 1 s scrape interval."""

    def __init__(self, binary: str, exporter_port: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="gemini-prom-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = self.dir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: exporter\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{exporter_port}']\n"
        )
        self.log = (self.dir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, query: str, timeout: float = 30.0) -> None:
        """Until the exporter is up and `query` had a value 2 s ago (tests may query slightly in
        the past, e.g. with a `now` rounded down to the second)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited: {(self.dir / 'prometheus.log').read_text()}"
                )
            try:
                r = httpx.get(
                    f"{self.url}/api/v1/query",
                    params={"query": query, "time": f"{time.time() - 2:.3f}"},
                    timeout=1,
                )
                if r.status_code == 200 and r.json()["data"]["result"]:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready: {(self.dir / 'prometheus.log').read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class QueryStub:
    """A tiny HTTP server answering /api/v1/query with whatever `respond` returns.

    `respond(path, query_params, headers) -> (status, body, delay_seconds)`; requests are logged.
    """

    def __init__(
        self, respond: Callable[[str, dict[str, list[str]], dict[str, str]], tuple[int, Any, float]]
    ) -> None:
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                from urllib.parse import parse_qs, urlsplit

                parts = urlsplit(self.path)
                params = parse_qs(parts.query)
                headers = {k.lower(): v for k, v in self.headers.items()}
                stub.requests.append((parts.path, params, headers))
                status, body, delay = respond(parts.path, params, headers)
                if delay:
                    time.sleep(delay)
                data = json.dumps(body).encode() if not isinstance(body, bytes) else body
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
