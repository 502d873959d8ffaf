"""`gemini controller`: run the controller until SIGTERM/SIGINT.

Owns process concerns: logging setup (structlog JSON in a cluster, console locally), the
ApiClient, leader-election settings (env), the decision store and its buffered writer, the HTTP
server (with the dashboard mounted at `/` when its package is importable), signal handling and the
graceful shutdown order (stop scheduling -> finish in-flight ticks -> release the Lease -> flush
decisions -> stop HTTP).

Environment: `POD_NAME` / `POD_NAMESPACE` (identity and Lease namespace, from the downward API),
`GEMINI_LEASE_NAME`, `GEMINI_LEASE_DURATION_SECONDS` (15), `GEMINI_RENEW_DEADLINE_SECONDS` (10),
`GEMINI_RETRY_PERIOD_SECONDS` (2), `GEMINI_LEADER_ELECTION` (`false` to run without),
`GEMINI_DATA_DIR` (where the default SQLite store lives), `GEMINI_WORKERS` (16),
`GEMINI_LOG_FORMAT` (`json` | `console`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import structlog

from gemini.clock import SystemClock


def configure_logging(fmt: str | None = None) -> None:
    """JSON lines in a cluster (or when asked), a readable console format otherwise."""
    fmt = (
        fmt
        or os.environ.get("GEMINI_LOG_FORMAT")
        or ("json" if os.environ.get("KUBERNETES_SERVICE_HOST") else "console")
    )
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


def default_db_url() -> str:
    """A SQLite file under a writable directory (the Pod mounts an emptyDir there)."""
    candidates = [os.environ.get("GEMINI_DATA_DIR"), "/var/lib/gemini", tempfile.gettempdir()]
    for cand in candidates:
        if not cand:
            continue
        path = Path(cand)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(path, os.W_OK):
            return f"sqlite:///{path / 'gemini-decisions.sqlite'}"
    return "memory://"


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{name}: not a number: {raw!r}") from None


def controller_command(
    kubeconfig: str | None, namespaces: list[str], db: str | None, port: int
) -> int:
    from kubernetes import client

    from gemini import kubeclient
    from gemini.controller import wiring
    from gemini.controller.leader import LeaderElector, LeaseConfig
    from gemini.controller.runtime import Controller
    from gemini.controller.server import HttpServer, create_ops_app

    configure_logging()
    log = structlog.get_logger("gemini.controller")
    clock = SystemClock()
    try:
        api = kubeclient.api_client(kubeconfig=kubeconfig)
    except Exception as exc:
        print(f"gemini controller: cannot configure the Kubernetes client: {exc}", file=sys.stderr)
        return 1
    identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
    lease_ns = os.environ.get("POD_NAMESPACE") or kubeclient.default_namespace(kubeconfig)

    store: Any = None
    writer: Any = None
    try:
        from gemini.store import open_store
        from gemini.store.buffered import BufferedWriter

        store = open_store(db or default_db_url())
        writer = BufferedWriter(store)
    except Exception as exc:
        print(f"gemini controller: decision store {db!r}: {exc}", file=sys.stderr)
        return 1

    sink: Any = writer
    publisher: Any = None
    topic = os.environ.get("GEMINI_DECISIONS_TOPIC")
    if topic:
        # Downstream consumers: one JSON message per applied decision, ordered per policy.
        from gemini import loop
        from gemini.store.pubsub_sink import PubSubSink

        try:
            publisher = PubSubSink(topic)
            sink = loop.Fanout(writer, publisher)
        except ValueError as exc:
            print(f"gemini controller: GEMINI_DECISIONS_TOPIC: {exc}", file=sys.stderr)
            return 1

    monitoring = wiring.monitoring_reader()
    try:
        lease = LeaseConfig(
            namespace=lease_ns,
            name=os.environ.get("GEMINI_LEASE_NAME", "gemini-controller"),
            identity=identity,
            lease_duration=_float_env("GEMINI_LEASE_DURATION_SECONDS", 15.0),
            renew_deadline=_float_env("GEMINI_RENEW_DEADLINE_SECONDS", 10.0),
            retry_period=_float_env("GEMINI_RETRY_PERIOD_SECONDS", 2.0),
        )
    except ValueError as exc:
        print(f"gemini controller: {exc}", file=sys.stderr)
        return 1
    elect = os.environ.get("GEMINI_LEADER_ELECTION", "true").lower() not in {"0", "false", "no"}
    elector = LeaderElector(client.CoordinationV1Api(api), lease, clock) if elect else None
    ctrl = Controller(
        custom_api=client.CustomObjectsApi(api),
        core_api=client.CoreV1Api(api),
        reader=wiring.build_reader(api, monitoring),
        scaler=wiring.build_scaler(api, monitoring, clock),
        clock=clock,
        elector=elector,
        namespaces=namespaces or None,
        sink=sink,
        workers=int(_float_env("GEMINI_WORKERS", 16)),
        identity=identity,
    )
    if elector is not None:
        elector._on_started = ctrl.on_started_leading
        elector._on_stopped = ctrl.on_stopped_leading

    dashboard = None
    try:
        from gemini.dashboard.app import create_app

        dashboard = create_app(store, writer_stats=writer.stats)
    except Exception as exc:  # the dashboard is optional
        log.warning("dashboard not mounted", error=str(exc))

    def details() -> dict[str, Any]:
        return {
            "identity": identity,
            "leader": ctrl.is_leader(),
            "policies": len(ctrl.cache),
            "scheduled": len(ctrl.scheduler),
        }

    app = create_ops_app(ctrl.telemetry.registry, lambda: ctrl.ready, details, dashboard)
    http = HttpServer(app, "0.0.0.0", port)
    try:
        http.start()
    except RuntimeError as exc:
        print(f"gemini controller: port {port}: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("shutting down", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "controller starting",
        identity=identity,
        lease=f"{lease_ns}/{lease.name}",
        namespaces=namespaces or "all",
        port=http.port,
        leader_election=elect,
    )
    ctrl.start()
    stop.wait()
    ctrl.stop(timeout=lease.renew_deadline)
    if writer is not None:
        writer.close()
    if publisher is not None:
        try:
            publisher.close(timeout=5.0)  # publish what is still batched
        except Exception as exc:
            log.warning("closing the decisions topic publisher failed", error=str(exc))
    http.stop()
    log.info("controller stopped", identity=identity)
    return 0
