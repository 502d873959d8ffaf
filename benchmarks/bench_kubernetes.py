"""Benchmark: reading and scaling many Kubernetes targets through `/scale`, against the local API
server (tests/fakes/kube.py) with the real `kubernetes` client.

For N Deployments spread over 10 namespaces (each namespace also holds an unrelated HPA), one
cycle of `KubernetesScaler.capacity` over all targets is timed in several modes and compared with
the floor measured in the same run: one bare `GET .../scale` per target. Then one `apply` per
target (a real change), and a contention run where two scalers fight over the same targets
(every write carries the resourceVersion it read, so the loser gets a 409 and re-reads).

Prints a Markdown table and exits 0.

    .venv/bin/python benchmarks/bench_kubernetes.py [--targets 400] [--cycles 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gemini import kubeclient
from gemini.policy.spec import Target
from gemini.scalers import ApplyStatus, TargetRef
from gemini.scalers.kubernetes import KubernetesScaler
from tests.fakes.kube import KubeServer, deployment, hpa

NAMESPACES = 10
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def refs(n: int) -> list[TargetRef]:
    out = []
    for i in range(n):
        ns = f"ns-{i % NAMESPACES}"
        target = Target.model_validate({"kubernetes": {"kind": "Deployment", "name": f"app-{i}"}})
        out.append(TargetRef(f"{ns}/p-{i}", ns, target))
    return out


def timed_cycles(cycles: int, fn: Callable[[int], None]) -> float:
    """Median wall seconds of `cycles` calls of fn(cycle_index)."""
    times = []
    for c in range(cycles):
        t0 = time.perf_counter()
        fn(c)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=400)
    ap.add_argument("--cycles", type=int, default=5)
    args = ap.parse_args()
    n = args.targets

    with KubeServer() as server:
        targets = refs(n)
        for i, r in enumerate(targets):
            server.put_object(deployment(f"app-{i}", r.namespace, replicas=2))
        for k in range(NAMESPACES):
            server.put_object(hpa("unrelated", "Deployment", "elsewhere", f"ns-{k}"))
        api = server.api_client()

        def bare(_: int) -> None:
            for r in targets:
                assert r.target.kubernetes is not None
                kubeclient.request(
                    api,
                    "GET",
                    f"/apis/apps/v1/namespaces/{r.namespace}/deployments/"
                    f"{r.target.kubernetes.name}/scale",
                )

        def capacity_cycle(scaler: KubernetesScaler) -> Callable[[int], None]:
            scaler.capacity(targets[0], NOW)  # discovery warm-up, as in a running controller

            def cycle(c: int) -> None:
                now = NOW + timedelta(seconds=15 * c)
                for r in targets:
                    cap = scaler.capacity(r, now)
                    assert cap.current == 2 and cap.blocked is None

            return cycle

        modes: list[tuple[str, Callable[[int], None]]] = [
            ("bare GET /scale (floor)", bare),
            ("capacity, conflict checks every call", capacity_cycle(KubernetesScaler(api))),
            (
                "capacity, conflict lists cached 10 s",
                capacity_cycle(KubernetesScaler(api, conflict_ttl_seconds=10.0)),
            ),
            (
                "capacity, no conflict checks",
                capacity_cycle(KubernetesScaler(api, check_conflicts=False)),
            ),
        ]
        bare(0)  # warm the connection pool
        times: dict[str, list[float]] = {label: [] for label, _ in modes}
        requests: dict[str, int] = dict.fromkeys(times, 0)
        for c in range(args.cycles):  # interleaved, so load from other processes hits all modes
            for label, fn in modes:
                before = len(server.log)
                t0 = time.perf_counter()
                fn(c)
                times[label].append(time.perf_counter() - t0)
                requests[label] += len(server.log) - before
        rows: list[tuple[str, float, float]] = [
            (label, statistics.median(times[label]), requests[label] / (n * args.cycles))
            for label, _ in modes
        ]
        floor = rows[0][1]

        def count(fn: Callable[[int], None], cycles: int) -> tuple[float, float]:
            before = len(server.log)
            secs = timed_cycles(cycles, fn)
            return secs, (len(server.log) - before) / (n * cycles)

        scaler = KubernetesScaler(api, conflict_ttl_seconds=10.0)

        def scale_all(c: int) -> None:
            for r in targets:
                res = scaler.apply(r, 3 + c, NOW)
                assert res.status is ApplyStatus.APPLIED, res

        secs, per = count(scale_all, 1)
        rows.append(("apply (a real change), lists cached", secs, per))

        # contention: two scalers, same targets, different goals, interleaved
        contended = targets[: min(100, n)]
        results: dict[str, list[ApplyStatus]] = {"a": [], "b": []}

        def fight(name: str, goal: int) -> None:
            s = KubernetesScaler(server.api_client(), check_conflicts=False)
            for _ in range(3):
                for r in contended:
                    results[name].append(s.apply(r, goal, NOW).status)

        t0 = time.perf_counter()
        threads = [
            threading.Thread(target=fight, args=("a", 10)),
            threading.Thread(target=fight, args=("b", 20)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fight_secs = time.perf_counter() - t0
        conflicts_409 = sum(
            1
            for rec in server.requests("PUT")
            if rec.status == 409 and rec.resource.endswith("/scale")
        )
        outcome = {
            s.value: sum(1 for lst in results.values() for x in lst if x is s)
            for s in ApplyStatus
            if any(x is s for lst in results.values() for x in lst)
        }
        final = sorted(
            {
                (
                    server.get_object(
                        "apps/v1", "Deployment", r.target.kubernetes.name, r.namespace
                    )
                    or {}
                )
                .get("spec", {})
                .get("replicas")
                for r in contended
                if r.target.kubernetes is not None
            }
        )

    print(
        f"## Kubernetes scaler against the local API server ({n} Deployments, {NAMESPACES} namespaces)\n"
    )
    print("| mode | s per cycle (median) | targets/s | API requests per target | x floor time |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, secs, per in rows:
        print(f"| {label} | {secs:.3f} | {n / secs:,.0f} | {per:.2f} | {secs / floor:.2f} |")
    print()
    print(
        f"Contention: 2 scalers x 3 rounds x {len(contended)} targets (goals 10 vs 20) in "
        f"{fight_secs:.2f} s: outcomes {outcome}; 409 answers {conflicts_409}; final replicas "
        f"seen {final} (each write was conditional on the resourceVersion it read)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
