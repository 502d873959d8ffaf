"""Benchmark: one metric-read cycle of 1,000 policies over 10 projects x 3 metric types
(Pub/Sub backlog, Pub/Sub oldest unacked age, Bigtable CPU) against the local MetricService
(tests/fakes/monitoring.py) through the real google-cloud-monitoring client.

Prints a Markdown table: ListTimeSeries calls and wall time per cycle, batched (gemini's reader)
against the unbatched baseline (one call per request) measured in the same run. With `--naive`
(default on) a second table shows the same reader against tests/fakes/naive_monitoring.py (no
one_of, no aggregation): the first cycle pays for the probing, later cycles go straight to one
exact-filter call per resource.

    .venv/bin/python benchmarks/bench_metrics.py [--policies 1000] [--cycles 5] [--no-naive]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gemini.metrics import MetricRequest, RoutingReader
from gemini.metrics.bigtable import BigtableSource
from gemini.metrics.cloud_monitoring import MonitoringReader
from gemini.metrics.pubsub import PubsubSource
from gemini.policy.spec import Metric
from tests.fakes.monitoring import MonitoringServer
from tests.fakes.naive_monitoring import NaiveMetricService, NaiveServer

PROJECTS = 10
BACKLOG = "pubsub.googleapis.com/subscription/num_undelivered_messages"
AGE = "pubsub.googleapis.com/subscription/oldest_unacked_message_age"
CPU = "bigtable.googleapis.com/cluster/cpu_load"


def build(n: int, server: MonitoringServer, now: datetime) -> list[MetricRequest]:
    return build_into(n, server.service.add_series, now)


def build_into(n: int, add_series: Any, now: datetime) -> list[MetricRequest]:
    requests: list[MetricRequest] = []
    server = SimpleNamespace(service=SimpleNamespace(add_series=add_series))
    points = [now - timedelta(seconds=s) for s in (240, 180, 120, 60)]
    for i in range(n):
        project = f"proj-{i % PROJECTS}"
        kind = (i // PROJECTS) % 3
        if kind == 2:
            inst, cluster = f"inst-{i}", f"inst-{i}-c1"
            server.service.add_series(
                project,
                CPU,
                "bigtable_cluster",
                {"instance": inst, "cluster": cluster},
                [(t, 0.5) for t in points],
            )
            source = {"bigtable": {"project": project, "instance": inst, "cluster": cluster}}
        else:
            sub = f"sub-{i:05}"
            server.service.add_series(
                project,
                BACKLOG if kind == 0 else AGE,
                "pubsub_subscription",
                {"subscription_id": sub},
                [(t, float(i)) for t in points],
            )
            which = "num_undelivered_messages" if kind == 0 else "oldest_unacked_message_age"
            source = {
                "pubsub": {
                    "subscription": f"projects/{project}/subscriptions/{sub}",
                    "metric": which,
                }
            }
        metric = Metric.model_validate(
            {"name": "m", "source": source, "target": {"type": "Value", "value": 1}}
        )
        requests.append(MetricRequest(f"ns/policy-{i}", "ns", metric))
    return requests


def cycle(
    server: MonitoringServer, requests: list[MetricRequest], now: datetime, batch: bool
) -> tuple[int, float, int]:
    reader = MonitoringReader(endpoint=server.endpoint, batch=batch)
    routing = RoutingReader(
        {"pubsub": PubsubSource(reader=reader), "bigtable": BigtableSource(reader=reader)}
    )
    before = len(server.service.requests)
    start = time.perf_counter()
    out = routing.read(requests, now)
    wall = time.perf_counter() - start
    ok = sum(o.ok for o in out)
    return len(server.service.requests) - before, wall, ok


def naive_rows(n: int, now: datetime, cycles: int) -> list[tuple[str, int, float, int]]:
    """The batched reader against the naive server: first cycle, then the median later one."""
    svc = NaiveMetricService()

    def add(
        project: str, mtype: str, rtype: str, labels: dict[str, str], points: list[Any]
    ) -> None:
        svc.add(project, mtype, labels, points, resource_type=rtype)

    requests = build_into(n, add, now)
    rows: list[tuple[str, int, float, int]] = []
    with NaiveServer(svc) as server:
        reader = MonitoringReader(endpoint=server.endpoint)
        routing = RoutingReader(
            {"pubsub": PubsubSource(reader=reader), "bigtable": BigtableSource(reader=reader)}
        )
        runs = []
        for _ in range(max(2, cycles)):
            before = len(svc.requests)
            start = time.perf_counter()
            out = routing.read(requests, now)
            runs.append(
                (len(svc.requests) - before, time.perf_counter() - start, sum(o.ok for o in out))
            )
        first, later = runs[0], runs[1:]
        rows.append(("naive server, first cycle (probing)", *first))
        rows.append(
            (
                "naive server, later cycles (median)",
                later[0][0],
                statistics.median(r[1] for r in later),
                later[-1][2],
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--naive", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    with MonitoringServer() as server:
        requests = build(args.policies, server, now)
        cycle(server, requests[:3], now, True)  # warm up the channel
        rows = []
        for label, batch, cycles in (
            ("unbatched (baseline: one call per request)", False, max(1, args.cycles // 2)),
            ("batched (gemini)", True, args.cycles),
        ):
            runs = [cycle(server, requests, now, batch) for _ in range(cycles)]
            calls = runs[0][0]
            walls = [r[1] for r in runs]
            rows.append((label, calls, statistics.median(walls), runs[0][2], cycles))
    base_calls, base_wall = rows[0][1], rows[0][2]
    print(
        f"### Metric read cycle: {args.policies} policies, {PROJECTS} projects x 3 metric types\n"
    )
    print(
        "| reader | ListTimeSeries calls / cycle | wall s / cycle (median) | "
        "observations ok | cycles | calls vs baseline | time vs baseline |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, calls, wall, ok, n in rows:
        print(
            f"| {label} | {calls} | {wall:.3f} | {ok}/{args.policies} | {n} | "
            f"{calls / base_calls:.3f}x | {wall / base_wall:.3f}x |"
        )
    batched_calls = rows[1][1]
    per_project = batched_calls * 4 / PROJECTS
    print(
        f"\nQuota: at a 15 s interval a batched cycle costs {batched_calls} x 4 = "
        f"{batched_calls * 4} ListTimeSeries calls/min, {per_project:.0f} per project, of "
        "Cloud Monitoring's 6,000 reads/min per project (unbatched: "
        f"{base_calls * 4 / PROJECTS:.0f} per project)."
    )
    if args.naive:
        print("\n### Same cycle against the naive MetricService (no one_of, no aggregation)\n")
        print("| reader | ListTimeSeries calls / cycle | wall s / cycle | observations ok |")
        print("|---|---:|---:|---:|")
        for label, calls, wall, ok in naive_rows(args.policies, now, max(2, args.cycles // 2)):
            print(f"| {label} | {calls} | {wall:.3f} | {ok}/{args.policies} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
