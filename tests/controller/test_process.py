"""`gemini controller` as real processes against the fake API server: two replicas with leader
election (one acts; SIGKILL the leader and the standby takes over; no double apply), the HTTP
endpoints, and graceful SIGTERM (exit 0, Lease released)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.controller.conftest import eventually, policy
from tests.fakes.kube import KubeServer, deployment

LEASE = ("coordination.k8s.io/v1", "Lease", "gemini-controller", "gemini-system")
SCALE_PATH = "/apis/apps/v1/namespaces/default/deployments/web/scale"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_trace(path: Path, value: float) -> None:
    # Samples up to "now" of the wall clock (the processes use SystemClock).
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [
        f"{(now - timedelta(seconds=s)).isoformat().replace('+00:00', 'Z')},{value}"
        for s in range(120, -1, -5)
    ]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    tmp.replace(path)


class Proc:
    def __init__(self, kubeconfig: Path, tmp: Path, name: str) -> None:
        self.name = name
        self.port = free_port()
        env = {
            **os.environ,
            "POD_NAME": name,
            "POD_NAMESPACE": "gemini-system",
            "GEMINI_LEASE_DURATION_SECONDS": "2",
            "GEMINI_RENEW_DEADLINE_SECONDS": "1.2",
            "GEMINI_RETRY_PERIOD_SECONDS": "0.3",
            "GEMINI_LOG_FORMAT": "json",
        }
        self.log = (tmp / f"{name}.log").open("w")
        self.p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gemini",
                "controller",
                "--kubeconfig",
                str(kubeconfig),
                "--db",
                f"sqlite:///{tmp / (name + '.sqlite')}",
                "--port",
                str(self.port),
            ],
            cwd=tmp,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

    def ready(self) -> dict[str, Any] | None:
        code, body = self.get("/readyz")
        return json.loads(body) if code == 200 else None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        rc = self.p.wait(timeout=20)
        self.log.close()
        return rc


@pytest.fixture
def procs(kube: KubeServer, tmp_path: Path) -> Iterator[Any]:
    started: list[Proc] = []
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    kube.put_object(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gemini-system"}}
    )

    def start(name: str) -> Proc:
        p = Proc(kubeconfig, tmp_path, name)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.p.poll() is None:
            p.stop(signal.SIGKILL)


def decisions(path: Path) -> int:
    import sqlite3

    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path)) as db:
        try:
            return int(db.execute("select count(*) from decisions").fetchone()[0])
        except sqlite3.OperationalError:  # not migrated yet
            return 0


def holder(kube: KubeServer) -> str | None:
    obj = kube.get_object(*LEASE)
    return None if obj is None else obj["spec"].get("holderIdentity")


def scale_writes(kube: KubeServer) -> int:
    return len([r for r in kube.requests("PUT", SCALE_PATH) if r.status == 200])


def rescale_events(kube: KubeServer) -> list[dict[str, Any]]:
    return [e for e in kube.list_objects("v1", "Event") if e["reason"] == "SuccessfulRescale"]


@pytest.mark.slow
def test_two_replicas_one_acts_failover_and_graceful_shutdown(
    kube: KubeServer, procs: Any, tmp_path: Path
) -> None:
    trace = tmp_path / "load.csv"
    write_trace(trace, 60.0)
    kube.put_object(deployment("web", replicas=2))
    kube.put_object(
        policy(
            "web",
            extra_spec={
                "metrics": [
                    {
                        "name": "load",
                        "source": {"recorded": {"file": str(trace)}},
                        "target": {"type": "AverageValue", "averageValue": 10},
                    }
                ],
                # no rate limit in the way of the second change (HPA's default holds it 15 s)
                "behavior": {
                    "scaleUp": {"policies": [{"type": "Pods", "value": 100, "periodSeconds": 1}]}
                },
            },
        )
    )
    a, b = procs("ctrl-a"), procs("ctrl-b")
    eventually(lambda: a.ready() and b.ready(), timeout=30)
    first = eventually(lambda: holder(kube), timeout=10)
    leader, standby = (a, b) if first == "ctrl-a" else (b, a)
    eventually(
        lambda: kube.get_object("apps/v1", "Deployment", "web")["spec"]["replicas"] == 6, timeout=10
    )
    time.sleep(1.5)  # several more ticks by the leader: nothing more to write
    assert scale_writes(kube) == 1
    assert {e["reportingInstance"] for e in rescale_events(kube)} == {leader.name}
    assert leader.ready()["leader"] is True and standby.ready()["leader"] is False  # type: ignore[index]
    code, metrics = leader.get("/metrics")
    assert code == 200 and "gemini_leader 1.0" in metrics
    assert 'gemini_desired_capacity{namespace="default",policy="web"} 6.0' in metrics
    assert "gemini_evaluation_duration_seconds_bucket" in metrics
    assert standby.get("/healthz")[0] == 200 and "gemini_leader 0.0" in standby.get("/metrics")[1]

    assert leader.get("/")[0] == 200  # the dashboard, mounted at the root
    # decisions reach the leader's store through the buffered writer (the standby records none)
    eventually(lambda: decisions(tmp_path / f"{leader.name}.sqlite") > 0, timeout=5)
    assert decisions(tmp_path / f"{standby.name}.sqlite") == 0
    leader.stop(signal.SIGKILL)  # no release: the standby waits out the lease
    killed = time.monotonic()
    eventually(lambda: holder(kube) == standby.name, timeout=10)
    assert time.monotonic() - killed < 2 + 0.3 + 2.0  # lease duration + retry + slack
    write_trace(trace, 90.0)
    eventually(
        lambda: kube.get_object("apps/v1", "Deployment", "web")["spec"]["replicas"] == 9, timeout=10
    )
    time.sleep(1.0)
    assert scale_writes(kube) == 2  # one write per change, never two controllers
    assert rescale_events(kube)[-1]["reportingInstance"] == standby.name or any(
        e["reportingInstance"] == standby.name for e in rescale_events(kube)
    )
    assert standby.stop(signal.SIGTERM) == 0
    assert holder(kube) is None  # released on graceful shutdown
