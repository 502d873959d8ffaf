"""Controller at scale: N policies at one interval, one controller process, local servers.

The fake Kubernetes API server (tests/fakes/kube.py) and the fake Cloud Monitoring MetricService
(tests/fakes/monitoring.py) run in a *child process*, so the CPU and RSS measured here are the
controller's alone. Each policy scales its own Deployment on the Pub/Sub backlog of its own
subscription (read through the real Cloud Monitoring client, batched by the metrics package).

Reports per interval: evaluations, schedule lag (batch start and per-policy completion, p50/p99),
ListTimeSeries calls (vs. the expected number of metric groups: 100 subscriptions per call),
Kubernetes API requests, overruns, controller CPU and RSS. Prints Markdown; exits 0.

    .venv/bin/python benchmarks/bench_controller.py            # 2,000 policies, 15 s, 3 cycles
    .venv/bin/python benchmarks/bench_controller.py --policies 500 --cycles 2
    .venv/bin/python benchmarks/bench_controller.py --list-threshold 0   # a GET per target
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROJECT = "bench"
PUBSUB_TYPE = "pubsub.googleapis.com/subscription/num_undelivered_messages"


def backlog(i: int) -> float:
    return float((i % 7 + 1) * 100)  # averageValue 100 -> 1..7 replicas


def policy_doc(i: int, interval: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling.gemini.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": f"p{i}", "namespace": f"ns{i % 10}"},
        "spec": {
            "target": {
                "kubernetes": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"w{i}"}
            },
            "minReplicas": 1,
            "maxReplicas": 20,
            "intervalSeconds": interval,
            "metrics": [
                {
                    "name": "backlog",
                    "source": {
                        "pubsub": {"subscription": f"projects/{PROJECT}/subscriptions/sub-{i:05d}"}
                    },
                    "target": {"type": "AverageValue", "averageValue": 100},
                    "maxAgeSeconds": 600,
                }
            ],
        },
    }


def changes(i: int, churn: float) -> int:
    """1 for the policies whose load alternates between 1x and 1.5x every minute."""
    return 1 if (i * 0.6180339887) % 1.0 < churn else 0


def serve(conn: Any, n: int, interval: int, seconds: float, churn: float) -> None:
    """Child process: run both fake servers, seed them, report addresses, then counts on request."""
    import yaml

    import tests.fakes.kube as fake_kube
    from tests.fakes.kube import KubeServer, deployment
    from tests.fakes.monitoring import MonitoringServer

    fake_kube._Handler.disable_nagle_algorithm = True  # see tests/controller/conftest.py
    kube = KubeServer(bookmark_interval=5.0).start()
    kube.register_crd(yaml.safe_load((ROOT / "deploy" / "crd.yaml").read_text()))
    mon = MonitoringServer().start()
    now = datetime.now(UTC).replace(microsecond=0)
    times = [now + timedelta(seconds=s) for s in range(-600, int(seconds) + 120, 60)]
    for i in range(n):
        replicas = math.ceil(backlog(i) / 100)
        kube.put_object(deployment(f"w{i}", f"ns{i % 10}", replicas=replicas))
        kube.put_object(policy_doc(i, interval))
        mon.service.add_series(
            PROJECT,
            PUBSUB_TYPE,
            "pubsub_subscription",
            {"subscription_id": f"sub-{i:05d}", "project_id": PROJECT},
            [
                (t, backlog(i) * (1.0 + 0.5 * ((k + i) % 2) * changes(i, churn)))
                for k, t in enumerate(times)
            ],
        )
    conn.send((kube.url, mon.endpoint))
    while True:
        msg = conn.recv()
        if msg == "counts":
            puts = sum(1 for r in list(kube.log) if r.method == "PUT")
            conn.send((len(mon.service.requests), len(kube.log), puts, time.process_time()))
        elif msg == "paths":
            from collections import Counter

            kinds = Counter(f"{r.method} {r.verb} {r.resource}" for r in list(kube.log))
            conn.send(dict(kinds))
        elif msg == "stop":
            kube.stop()
            mon.stop()
            conn.send("stopped")
            return


def _event_calls(ctrl: Any) -> int:
    return int(ctrl.events.calls) if ctrl.events is not None else 0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--policies", type=int, default=2000)
    ap.add_argument("--interval", type=int, default=15)
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument(
        "--list-threshold",
        type=int,
        default=None,
        help="targets per namespace read with one LIST (default: the controller's; 0: a GET each)",
    )
    ap.add_argument(
        "--churn",
        type=float,
        default=1.0,
        help="fraction of policies whose load changes every minute (1.0: all of them)",
    )
    args = ap.parse_args()

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    t_setup = time.perf_counter()
    proc = ctx.Process(
        target=serve,
        args=(child, args.policies, args.interval, args.interval * (args.cycles + 3), args.churn),
        daemon=True,
    )
    proc.start()
    kube_url, mon_endpoint = parent.recv()
    seed_s = time.perf_counter() - t_setup

    os.environ["GEMINI_MONITORING_ENDPOINT"] = mon_endpoint
    import logging

    import structlog
    from kubernetes import client

    # One log line per decision is the product's behaviour; here it would only measure the
    # terminal. Keep warnings.
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    from gemini import kubeclient
    from gemini.clock import SystemClock
    from gemini.controller import wiring
    from gemini.controller.runtime import Controller
    from gemini.controller.scheduling import next_due

    clock = SystemClock()
    api = kubeclient.api_client(host=kube_url)
    api.rest_client.pool_manager.connection_pool_kw["maxsize"] = args.workers + 4
    monitoring = wiring.monitoring_reader()
    ctrl = Controller(
        custom_api=client.CustomObjectsApi(api),
        core_api=client.CoreV1Api(api),
        reader=wiring.build_reader(api, monitoring),
        scaler=wiring.build_scaler(
            api,
            monitoring,
            clock,
            list_threshold=(
                wiring.LIST_THRESHOLD if args.list_threshold is None else args.list_threshold
            ),
        ),
        clock=clock,
        workers=args.workers,
        watch_timeout_seconds=300,
    )
    wall0 = time.perf_counter()
    ctrl.start()
    ctrl.watcher.synced.wait(120)
    sync_s = time.perf_counter() - wall0
    # Measure whole cycles: from the next due instant on.
    first = next_due(args.interval, clock.now() + timedelta(seconds=1))
    time.sleep(max(0.0, (first - clock.now()).total_seconds() - 0.2))
    rows = []
    base_eval, base_calls = ctrl.evaluations, monitoring.stats.calls
    parent.send("counts")
    base_srv_calls, base_kube, base_puts, base_srv_cpu = parent.recv()
    base_lags, base_done = len(ctrl.lags), len(ctrl.done_lags)
    base_decided = len(ctrl.decided_lags)
    base_timings = len(ctrl.timings)
    measured_done: list[float] = []
    measured_decided: list[float] = []
    base_status, base_events = ctrl.status_writes, _event_calls(ctrl)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    base_ctl_cpu = cpu_start
    peak_rss = rss_mb()
    for c in range(args.cycles):
        end = first + timedelta(seconds=args.interval * (c + 1))
        while clock.now() < end - timedelta(seconds=0.2):
            time.sleep(0.2)
            peak_rss = max(peak_rss, rss_mb())
        parent.send("counts")
        srv_calls, kube_reqs, puts, srv_cpu = parent.recv()
        lags = ctrl.lags[base_lags:]
        done = ctrl.done_lags[base_done:]
        decided = ctrl.decided_lags[base_decided:]
        measured_done.extend(done)
        measured_decided.extend(decided)
        rows.append(
            {
                "cycle": c + 1,
                "evaluations": ctrl.evaluations - base_eval,
                "lag_start_p50": pct(lags, 0.5),
                "lag_start_p99": pct(lags, 0.99),
                "decided_p50": pct(decided, 0.5),
                "decided_p99": pct(decided, 0.99),
                "done_p50": pct(done, 0.5),
                "done_p99": pct(done, 0.99),
                "mon_calls": monitoring.stats.calls - base_calls,
                "srv_calls": srv_calls - base_srv_calls,
                "kube_reqs": kube_reqs - base_kube,
                "puts": puts - base_puts,
                "srv_cpu": srv_cpu - base_srv_cpu,
                "ctl_cpu": time.process_time() - base_ctl_cpu,
                "status": ctrl.status_writes - base_status,
                "events": _event_calls(ctrl) - base_events,
                "timings": ctrl.timings[base_timings:],
                "decided": decided,
            }
        )
        base_timings = len(ctrl.timings)
        base_status, base_events = ctrl.status_writes, _event_calls(ctrl)
        base_eval, base_calls = ctrl.evaluations, monitoring.stats.calls
        base_srv_calls, base_kube, base_puts = srv_calls, kube_reqs, puts
        base_srv_cpu, base_ctl_cpu = srv_cpu, time.process_time()
        base_lags, base_done = len(ctrl.lags), len(ctrl.done_lags)
        base_decided = len(ctrl.decided_lags)
    cpu = time.process_time() - cpu_start
    wall = time.perf_counter() - wall_start
    overruns = ctrl.scheduler.overruns
    ctrl.stop(timeout=30)
    if os.environ.get("BENCH_PATHS"):
        parent.send("paths")
        print(parent.recv(), file=sys.stderr)
    parent.send("stop")
    parent.recv()
    proc.join(10)

    expected_calls = math.ceil(args.policies / 100)  # one project+type+window group, 100 per call
    print(
        f"## Controller benchmark: {args.policies} policies, {args.interval} s interval, "
        f"{args.cycles} cycles, {args.workers} workers, churn {args.churn:g}, list threshold "
        f"{wiring.LIST_THRESHOLD if args.list_threshold is None else args.list_threshold}\n"
    )
    print(
        f"Setup: servers seeded in {seed_s:.1f} s (child process); initial list synced in "
        f"{sync_s:.1f} s.\n"
    )
    print(
        "| cycle | evaluations | batch start lag p50 / p99 (s) | decided p50 / p99 (s) "
        "| done p50 / p99 (s) | ListTimeSeries calls (server) | Kubernetes requests "
        "| of which status / events / scale writes | CPU s: controller / servers |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['cycle']} | {r['evaluations']} | {r['lag_start_p50']:.3f} / "
            f"{r['lag_start_p99']:.3f} | {r['decided_p50']:.2f} / {r['decided_p99']:.2f} | "
            f"{r['done_p50']:.2f} / {r['done_p99']:.2f} | "
            f"{r['mon_calls']} ({r['srv_calls']}) | {r['kube_reqs']} | "
            f"{r['status']} / {r['events']} / {r['puts']} | "
            f"{r['ctl_cpu']:.1f} / {r['srv_cpu']:.1f} |"
        )
    print()
    print(
        "Where each batch's time went (seconds after its due instant; the metric read runs "
        "alongside the target reads):\n"
    )
    print(
        "| cycle | batch size | started | targets read | metrics read | decided + applied "
        "| Events + status written |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        for t in r["timings"]:
            print(
                f"| {r['cycle']} | {t.size} | {t.started:.3f} | {t.targets_read:.2f} | "
                f"{t.metrics_read:.2f} | {t.decided:.2f} | {t.done:.2f} |"
            )
    evals = [r["evaluations"] for r in rows]
    print()
    print("| summary | value | goal |")
    print("| --- | --- | --- |")
    print(
        f"| evaluations per interval (mean) | {statistics.mean(evals):.0f} of {args.policies} | all |"
    )
    print(f"| overruns | {overruns} | 0 |")
    print(
        f"| decision made (and applied) after due, p50 / p99 (s) | "
        f"{pct(measured_decided, 0.5):.2f} / {pct(measured_decided, 0.99):.2f} | p99 < 2 |"
    )
    print(
        f"| tick done (status written) after due, p50 / p99 (s) | "
        f"{pct(measured_done, 0.5):.2f} / {pct(measured_done, 0.99):.2f} | |"
    )
    quiet = [x for r in rows if r["puts"] == 0 for x in r["decided"]]
    busy = [x for r in rows if r["puts"] > 0 for x in r["decided"]]
    for label, values in (("without", quiet), ("with", busy)):
        if values:
            print(
                f"| ... p50 / p99 in cycles {label} scale writes (s) | "
                f"{pct(values, 0.5):.2f} / {pct(values, 0.99):.2f} | |"
            )
    kube_total = sum(r["kube_reqs"] for r in rows)
    print(
        f"| Kubernetes requests per policy per cycle | "
        f"{kube_total / max(1, args.policies * len(rows)):.2f} | |"
    )
    print(
        f"| ListTimeSeries calls per cycle | {statistics.mean(r['mon_calls'] for r in rows):.1f} "
        f"| {expected_calls} (metric groups) |"
    )
    print(
        f"| controller CPU | {cpu:.1f} s over {wall:.1f} s ({100 * cpu / wall:.0f} % of one core) "
        f"| |"
    )
    print(
        f"| controller RSS now / peak sampled / ru_maxrss (MB) | {rss_mb():.0f} / {peak_rss:.0f} / "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} | < 400 |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
