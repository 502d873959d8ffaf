"""Decision store benchmark: 1 million decisions in SQLite, the policy page's API over 24 h, and
the buffered write path.

    .venv/bin/python benchmarks/bench_store.py [--n 1000000] [--policies 50] [--writes 100000]

1. Fill a fresh SQLite store with `--n` decisions (`--policies` policies, one decision per policy
   every 15 s, realistic JSON records) using executemany in big transactions.
2. Serve the dashboard with uvicorn and time `GET /api/decisions?policy=P&since=last-24h&limit=10000`
   (the policy page's API, ~5,760 records each) over HTTP: p50/p95 ms (goal < 200 ms).
3. Push `--writes` decisions through `BufferedWriter` into the same (large) store: sustained
   decisions/s (goal >= 5,000/s) and record() latency, against a baseline in the same run of one
   transaction per decision (`write_many([d])`, what an unbuffered loop would do).
Prints Markdown tables; exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
import uvicorn

from gemini.clock import iso
from gemini.dashboard import create_app
from gemini.policy.decision import Decision, MetricResult, MetricStatus, Step
from gemini.store.buffered import BufferedWriter
from gemini.store.sql import SqlStore, decisions_table, policies_table, to_us

INTERVAL = timedelta(seconds=15)
START = datetime(2026, 1, 1, tzinfo=UTC)


def template(policy: str, at: datetime, current: int, desired: int) -> Decision:
    return Decision(
        policy=policy,
        at=at,
        mode="Active",
        current=current,
        desired=desired,
        recommendation=desired,
        min_replicas=2,
        max_replicas=40,
        reasons=("ScaleUp", "ScaleUpLimit") if desired > current else ("NoChange",),
        metrics=(
            MetricResult(
                "rps",
                MetricStatus.OK,
                812.5,
                at - timedelta(seconds=42),
                42.0,
                100.0,
                "AverageValue",
                desired,
            ),
            MetricResult(
                "backlog",
                MetricStatus.OK,
                1200.0,
                at - timedelta(seconds=61),
                61.0,
                1000.0,
                "Value",
                desired - 1,
            ),
        ),
        steps=(
            Step("metrics", desired, "ScaleUp"),
            Step("scaleUpRate", desired, "ScaleUpLimit"),
            Step("bounds", desired, "DesiredWithinRange"),
        ),
        applied=desired != current,
        outcome="Scaled" if desired != current else None,
        target=f"apps/v1/Deployment/{policy.split('/')[1]}",
    )


def fill(store: SqlStore, n: int, policies: int) -> tuple[float, datetime]:
    """Bulk-load n decisions; returns (seconds, time of the newest decision)."""
    names = [f"bench/app-{i:03d}" for i in range(policies)]
    per = -(-n // policies)
    started = time.perf_counter()
    cols = [c.name for c in decisions_table.columns if c.name != "id"]
    sql = f"INSERT INTO decisions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    base = template(names[0], START, 4, 5).to_dict()
    raw = store.engine.raw_connection()
    cur = raw.cursor()
    cur.execute("PRAGMA synchronous=OFF")  # bulk load only; the store itself runs NORMAL
    batch: list[tuple[object, ...]] = []
    written = 0
    last_at = START
    for step in range(per):
        at = START + step * INTERVAL
        at_iso = iso(at)
        at_us = to_us(at)
        for p, name in enumerate(names):
            if written >= n:
                break
            current = 4 + (step // 40 + p) % 6
            desired = current + (1 if step % 40 == 0 else 0)
            base["at"], base["policy"] = at_iso, name
            base["currentReplicas"], base["desiredReplicas"] = current, desired
            base["applied"] = desired != current
            batch.append(
                (
                    name,
                    at_us,
                    desired != current,
                    "Active",
                    current,
                    desired,
                    "ScaleUp" if desired != current else "NoChange",
                    json.dumps(base, separators=(",", ":")),
                    "bench",
                    name[6:],
                    base["target"],
                    2,
                    40,
                )
            )
            written += 1
            last_at = at
        if len(batch) >= 50_000:
            cur.execute("BEGIN")
            cur.executemany(sql, batch)
            cur.execute("COMMIT")
            batch.clear()
    if batch:
        cur.execute("BEGIN")
        cur.executemany(sql, batch)
        cur.execute("COMMIT")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
    raw.close()
    # the per-policy summaries: newest decision of each policy, then the real counts
    store.write_many([template(name, last_at, 5, 5) for name in names])
    d = decisions_table.c
    with store.engine.begin() as conn:
        counted = sa.select(sa.func.count()).where(d.policy == policies_table.c.policy)
        conn.execute(policies_table.update().values(decisions=counted.scalar_subquery()))
    return time.perf_counter() - started, last_at


def serve(app: object) -> tuple[uvicorn.Server, threading.Thread, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="decisions to store")
    ap.add_argument("--policies", type=int, default=50)
    ap.add_argument("--writes", type=int, default=100_000, help="decisions through the writer")
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--db", type=Path, default=None, help="SQLite file (default: a temp dir)")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="gemini-bench-")
    path = args.db or Path(tmp.name) / "bench.sqlite"
    if path.exists():
        path.unlink()
    store = SqlStore(f"sqlite:///{path}")
    fill_s, last_at = fill(store, args.n, args.policies)
    size_mb = path.stat().st_size / 1e6

    # --- the store query alone (in-process), then the policy page's API over HTTP
    window_since = last_at - timedelta(hours=24)
    q_ms: list[float] = []
    for i in range(args.requests):
        t0 = time.perf_counter()
        store.decision_records(
            f"bench/app-{i % args.policies:03d}", since=window_since, limit=10_000
        )
        q_ms.append((time.perf_counter() - t0) * 1000)

    server, thread, url = serve(create_app(store))
    since = iso(last_at - timedelta(hours=24))
    lat: list[float] = []
    sizes: list[int] = []
    page_lat: list[float] = []
    with httpx.Client(timeout=30) as client:
        client.get(f"{url}/api/decisions", params={"policy": "bench/app-000", "limit": 1})
        for i in range(args.requests):
            policy = f"bench/app-{i % args.policies:03d}"
            t0 = time.perf_counter()
            r = client.get(
                f"{url}/api/decisions", params={"policy": policy, "since": since, "limit": 10_000}
            )
            lat.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            sizes.append(len(r.json()))
        for i in range(min(10, args.requests)):
            t0 = time.perf_counter()
            client.get(f"{url}/policies/bench/app-{i % args.policies:03d}").raise_for_status()
            page_lat.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        client.get(f"{url}/api/policies").raise_for_status()
        overview_ms = (time.perf_counter() - t0) * 1000
    server.should_exit = True
    thread.join(10)

    # --- write path: baseline (one transaction per decision) vs BufferedWriter
    t_new = last_at + INTERVAL
    base_n = min(2000, args.writes)
    base_ds = [
        template(f"bench/app-{i % args.policies:03d}", t_new + i * timedelta(milliseconds=1), 4, 5)
        for i in range(base_n)
    ]
    t0 = time.perf_counter()
    for d in base_ds:
        store.write_many([d])
    base_rate = base_n / (time.perf_counter() - t0)

    proto = template("bench/app-000", t_new, 4, 5)
    t_w = t_new + timedelta(hours=1)
    ds = [
        replace(
            proto,
            policy=f"bench/app-{i % args.policies:03d}",
            at=t_w + i * timedelta(milliseconds=1),
        )
        for i in range(args.writes)
    ]
    writer = BufferedWriter(store, max_buffer=args.writes + 1, batch_size=2000, flush_interval=0.2)
    rec_us: list[float] = []
    t0 = time.perf_counter()
    for d in ds:
        r0 = time.perf_counter()
        writer.record(d)
        rec_us.append((time.perf_counter() - r0) * 1e6)
    ok = writer.flush(timeout=600)
    write_s = time.perf_counter() - t0
    writer.close()
    stats = writer.stats()
    rate = args.writes / write_s
    total = store.count()
    store.close()

    print("## Decision store benchmark (SQLite, WAL)\n")
    load = os.getloadavg()[0]
    print(f"Machine: {os.cpu_count()} CPUs, load average {load:.1f} at the end of the run.\n")
    print(
        f"{args.n:,} decisions, {args.policies} policies, one decision per policy every 15 s; "
        f"file {size_mb:,.0f} MB; bulk load {fill_s:.1f} s ({args.n / fill_s:,.0f}/s).\n"
    )
    print("| measurement | p50 | p95 | goal |")
    print("| --- | --- | --- | --- |")
    print(
        f"| `GET /api/decisions` one policy, 24 h window ({statistics.mean(sizes):,.0f} records, "
        f"{args.requests} requests over HTTP) | {pct(lat, 50):.1f} ms | {pct(lat, 95):.1f} ms "
        f"| < 200 ms |"
    )
    print(
        f"| store query alone, same window (in-process) | {pct(q_ms, 50):.1f} ms | "
        f"{pct(q_ms, 95):.1f} ms | — |"
    )
    print(
        f"| `GET /policies/NS/NAME` page (charts + table, {len(page_lat)} requests) | "
        f"{pct(page_lat, 50):.1f} ms | {pct(page_lat, 95):.1f} ms | — |"
    )
    print(f"| `GET /api/policies` ({args.policies} policies) | {overview_ms:.1f} ms | — | — |")
    print(
        f"| `BufferedWriter.record()` call | {pct(rec_us, 50):.1f} µs | {pct(rec_us, 99):.1f} µs "
        f"(p99) | never blocks |"
    )
    print()
    print("| write path | decisions/s | vs baseline | goal |")
    print("| --- | --- | --- | --- |")
    print(
        f"| baseline: `write_many([d])`, one transaction each ({base_n:,}) | {base_rate:,.0f} | "
        f"1.0x | — |"
    )
    print(
        f"| `BufferedWriter` (batches of 2,000) into the {args.n:,}-row store "
        f"({args.writes:,}) | {rate:,.0f} | {rate / base_rate:.1f}x | >= 5,000/s |"
    )
    print()
    print(f"written {stats.written:,}, dropped {stats.dropped}, flushed={ok}, rows now {total:,}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
