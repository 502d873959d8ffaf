"""Acceptance: scenarios written exactly like the CONTRACTS.md example (and minimal variants), on
synthetic traces with gaps, irregular intervals, zeros, a huge spike, 3 rows, a long series and
Parquet, run through the real `gemini simulate` process. Checks the JSON keys, that the oracle
never violates and nothing is cheaper than it, exit codes, and field-named errors for bad
scenarios (no traceback)."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.simulate.helpers import CONTRACT_RESULT_KEYS as RESULT_KEYS
from tests.simulate.helpers import CONTRACT_TOP_KEYS as TOP_KEYS

T0 = datetime(2024, 3, 1, tzinfo=UTC)
GEMINI = [str(Path(sys.executable).with_name("gemini"))]

# -- synthetic traces (requests per minute, like the NASA log) -----------------------------------


def _rows_diurnal(
    days: float, rng: random.Random, every: float = 60.0
) -> list[tuple[float, float]]:
    n = int(days * 86400 / every)
    out = []
    for i in range(n):
        t = i * every
        day = 0.5 - 0.5 * math.cos(2 * math.pi * t / 86400)
        out.append((t, round(300 + 2400 * day + rng.uniform(-150, 150), 3)))
    return out


def _rows_rough(rng: random.Random) -> list[tuple[float, float]]:
    """Irregular intervals (15 s to 5 min), a 3-hour gap, an hour of zeros, one huge spike."""
    out: list[tuple[float, float]] = []
    t = 0.0
    while t < 2 * 86400:
        if 30000 <= t < 30000 + 3 * 3600:  # a gap: no rows at all
            t += 3 * 3600
            continue
        day = 0.5 - 0.5 * math.cos(2 * math.pi * t / 86400)
        value = 0.0 if 60000 <= t < 63600 else 200 + 1800 * day + rng.uniform(0, 200)
        if 100000 <= t < 100060:
            value = 60000.0  # a single huge spike (about 25x the peak)
        out.append((t, round(value, 3)))
        t += rng.choice([15, 30, 60, 60, 60, 90, 120, 300])
    return out


def _write_csv(path: Path, rows: list[tuple[float, float]], percent: bool = False) -> Path:
    with path.open("w") as fh:
        fh.write("timestamp,value\n")
        for t, v in rows:
            at = (T0 + timedelta(seconds=t)).isoformat().replace("+00:00", "Z")
            fh.write(f"{at},{v}\n")
    return path


def _write_parquet(path: Path, rows: list[tuple[float, float]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    times = [T0 + timedelta(seconds=t) for t, _ in rows]
    table = pa.table(
        {
            "timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
            "value": [v for _, v in rows],
        }
    )
    pq.write_table(table, path)
    return path


WEB = {  # simulations/policies/web.yaml with room to follow the synthetic peaks
    "apiVersion": "autoscaling.gemini.dev/v1alpha1",
    "kind": "ScalingPolicy",
    "metadata": {"name": "web"},
    "spec": {
        "target": {"kubernetes": {"name": "web"}},
        "minReplicas": 1,
        "maxReplicas": 1000,
        "metrics": [
            {
                "name": "utilization",
                "source": {
                    "prometheus": {"serverAddress": "http://prometheus:9090", "query": "up"}
                },
                "target": {"type": "Utilization", "averageUtilization": 60},
            }
        ],
        "behavior": {
            "scaleUp": {
                "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15},
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                ]
            },
            "scaleDown": {
                "stabilizationWindowSeconds": 600,
                "policies": [{"type": "Percent", "value": 20, "periodSeconds": 60}],
            },
        },
    },
}

BIGTABLE = {
    "apiVersion": "autoscaling.gemini.dev/v1alpha1",
    "kind": "ScalingPolicy",
    "metadata": {"name": "bt"},
    "spec": {
        "target": {"bigtable": {"project": "p", "instance": "i", "cluster": "c"}},
        "minReplicas": 1,
        "maxReplicas": 200,
        "metrics": [
            {
                "name": "cpu",
                "source": {"bigtable": {"project": "p", "instance": "i", "cluster": "c"}},
                "target": {"type": "Utilization", "averageUtilization": 60},
            }
        ],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 1800}},
    },
}

QUEUE = {
    "apiVersion": "autoscaling.gemini.dev/v1alpha1",
    "kind": "ScalingPolicy",
    "metadata": {"name": "workers", "namespace": "jobs"},
    "spec": {
        "target": {"kubernetes": {"name": "workers"}},
        "minReplicas": 1,
        "maxReplicas": 500,
        "metrics": [
            {
                "name": "backlog",
                "source": {"pubsub": {"subscription": "projects/p/subscriptions/work"}},
                "target": {"type": "AverageValue", "averageValue": 30},
            }
        ],
    },
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory like a checkout: traces in one place, scenarios and policies in another."""
    root = tmp_path_factory.mktemp("acceptance")
    traces = root / "traces"
    traces.mkdir()
    rng = random.Random(6)
    diurnal = _rows_diurnal(2, rng)
    _write_csv(traces / "diurnal-1min.csv", diurnal)
    _write_csv(traces / "rough.csv", _rows_rough(rng))
    _write_csv(traces / "three.csv", [(0, 600.0), (60, 2400.0), (120, 300.0)])
    _write_csv(traces / "long-5min.csv", _rows_diurnal(30, rng, every=300))
    _write_parquet(traces / "diurnal.parquet", diurnal[:1440])
    # CPU percent of a fleet of 8 replicas, every 5 minutes
    util = [(t, round(min(99.0, 20 + v / 40), 3)) for t, v in _rows_diurnal(3, rng, every=300)]
    _write_csv(traces / "cpu-percent-5min.csv", util)
    sims = root / "scenarios"
    (sims / "policies").mkdir(parents=True)
    for doc, name in ((WEB, "web"), (BIGTABLE, "bigtable"), (QUEUE, "queue")):
        (sims / "policies" / f"{name}.yaml").write_text(yaml.safe_dump(doc))
    return root


def contract_example(**changes: Any) -> dict[str, Any]:
    """The CONTRACTS.md example, every key present; `changes` replace or merge into sections."""
    doc: dict[str, Any] = {
        "name": "nasa-web",
        "trace": {"file": "../traces/diurnal-1min.csv", "kind": "demand", "scale": 0.016667},
        "backend": {
            "kind": "deployment",
            "capacityPerReplica": 2.0,
            "startupSeconds": 120,
            "initialReplicas": 4,
        },
        "slo": {"maxUtilization": 0.9},
        "policies": ["policies/web.yaml"],
        "baselines": ["oracle", "static-peak", "hpa-default"],
    }
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        elif isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return doc


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GEMINI, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def simulate_file(lab: Path, name: str, doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    path = lab / "scenarios" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = lab / f"{name}.json"
    proc = run_cli("simulate", str(path), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(out.read_text()), proc.stdout


@dataclass(frozen=True)
class Case:
    id: str
    doc: dict[str, Any]
    runs: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)


INLINE_WEB = {**WEB, "metadata": {"name": "inline-web"}}

CASES = [
    Case("contract-example", contract_example(), ("web", "oracle", "static-peak", "hpa-default")),
    Case(
        "minimal-inline-policy-default-baselines",
        {
            "name": "minimal",
            "trace": {"file": "../traces/diurnal-1min.csv"},
            "backend": {"kind": "deployment", "capacityPerReplica": 100},
            "policies": [INLINE_WEB],
        },
        ("inline-web", "oracle", "static-peak", "hpa-default"),
    ),
    Case(
        "no-policies-baselines-only",
        contract_example(policies=None, baselines=["hpa-default", "oracle"]),
        ("hpa-default", "oracle"),
    ),
    Case(
        "gaps-irregular-zeros-spike",
        contract_example(trace={"file": "../traces/rough.csv"}),
        ("web", "oracle", "static-peak", "hpa-default"),
    ),
    Case(
        "three-rows",
        contract_example(trace={"file": "../traces/three.csv"}, baselines=None),
        ("web", "oracle", "static-peak", "hpa-default"),
        {"steps": 12},
    ),
    Case(
        "long-30-days-5min",
        contract_example(trace={"file": "../traces/long-5min.csv"}, stepSeconds=60),
        ("web", "oracle", "static-peak", "hpa-default"),
        {"steps": 30 * 1440},
    ),
    Case(
        "parquet-bigtable",
        contract_example(
            trace={"file": "../traces/diurnal.parquet"},
            backend={"kind": "bigtable", "capacityPerReplica": 4.0, "initialReplicas": 3},
            policies=["policies/bigtable.yaml"],
        ),
        ("bt", "oracle", "static-peak", "hpa-default"),
    ),
    Case(
        "queue-with-age-slo",
        contract_example(
            trace={"file": "../traces/rough.csv"},
            backend={"kind": "queue", "pricePerReplicaHour": 0.05},
            slo={"maxUtilization": 0.9, "maxAgeSeconds": 900},
            metrics={"delaySeconds": 90, "sampleSeconds": 60},
            policies=["policies/queue.yaml", "policies/web.yaml"],
        ),
        ("workers", "web", "oracle", "static-peak", "hpa-default"),
    ),
    Case(
        "utilization-kind-recorded-replicas",
        contract_example(
            trace={
                "file": "../traces/cpu-percent-5min.csv",
                "kind": "utilization",
                "recordedReplicas": 8,
                "scale": 0.01,
            },
            baselines=["oracle", "hpa-default"],
        ),
        ("web", "oracle", "hpa-default"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_simulate_process_meets_the_contract(lab: Path, case: Case) -> None:
    data, stdout = simulate_file(lab, case.id, case.doc)
    assert set(data) >= TOP_KEYS
    assert data["scenario"] == case.doc["name"]
    assert [r["name"] for r in data["results"]] == list(case.runs)
    step = case.doc.get("stepSeconds", 15)
    assert data["simulatedHours"] == pytest.approx(data["steps"] * step / 3600, abs=1e-3)
    if "steps" in case.extra:
        assert data["steps"] == case.extra["steps"]
    assert isinstance(data["wallSeconds"], float) and data["wallSeconds"] >= 0
    for r in data["results"]:
        assert set(r) >= RESULT_KEYS, r
        assert r["kind"] == (
            "baseline" if r["name"] in ("oracle", "static-peak", "hpa-default") else "policy"
        )
        assert r["maxReplicas"] >= r["meanReplicas"] >= 0
        price = case.doc["backend"].get("pricePerReplicaHour")
        if price is None:
            assert r["cost"] is None
        else:
            assert r["cost"] == pytest.approx(r["capacityHours"] * price, rel=1e-3)
    oracle = next(r for r in data["results"] if r["name"] == "oracle")
    assert oracle["sloViolationMinutes"] == 0
    assert oracle["capacityHours"] > 0
    for r in data["results"]:
        assert r["capacityHours"] >= oracle["capacityHours"], r["name"]
    assert oracle["name"] in stdout  # the console table


def test_the_shipped_scenarios_parse(lab: Path) -> None:
    """Every scenario in simulations/ and simulations/variants/ loads (the traces may be
    absent: then trace.file fails)."""
    from gemini.errors import SpecError
    from gemini.simulate.scenario import load_scenario

    root = Path(__file__).resolve().parents[2] / "simulations"
    shipped = sorted([*root.glob("*.yaml"), *(root / "variants").glob("*.yaml")])
    assert shipped
    for path in shipped:
        try:
            load_scenario(path)
        except SpecError as exc:
            assert all(p.startswith("trace.file") for p, _ in exc.problems), exc


# -- bad scenarios: exit 1, `FILE: field: message` on stderr, no traceback ---------------------

BAD_FILES = {
    "bad-header.csv": "time,val\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,2\n",
    "backwards.csv": "timestamp,value\n2024-01-01T00:01:00Z,1\n2024-01-01T00:00:00Z,2\n",
    "short-row.csv": "timestamp,value\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z\n",
    "words.csv": "timestamp,value\n2024-01-01T00:00:00Z,lots\n2024-01-01T00:01:00Z,2\n",
    "one-row.csv": "timestamp,value\n2024-01-01T00:00:00Z,1\n",
}

STEP_POLICY = {
    **WEB,
    "metadata": {"name": "steps"},
    "spec": {
        **WEB["spec"],
        "metrics": [
            {
                "name": "latency",
                "source": {"prometheus": {"serverAddress": "http://p:9090", "query": "up"}},
                "stepScaling": {
                    "steps": [
                        {"lowerBound": 0, "upperBound": 10, "adjustment": 1},
                        {"lowerBound": 10, "adjustment": 2},
                    ]
                },
            }
        ],
    },
}

BAD = [
    ("missing-trace-file", {"trace": {"file": "../traces/nope.csv"}}, "trace.file: no such file"),
    ("bad-header", {"trace": {"file": "../traces/bad-header.csv"}}, "trace.file: header"),
    (
        "non-increasing-timestamps",
        {"trace": {"file": "../traces/backwards.csv"}},
        "trace.file: row 3.timestamp: 2024-01-01T00:00:00Z is not after the previous row",
    ),
    ("short-row", {"trace": {"file": "../traces/short-row.csv"}}, "trace.file: row 3: expected 2"),
    ("not-a-number", {"trace": {"file": "../traces/words.csv"}}, "row 2.value: not a number"),
    ("one-row", {"trace": {"file": "../traces/one-row.csv"}}, "trace: fewer than 2 samples"),
    (
        "trace-is-a-directory",
        {"trace": {"file": "../traces"}},
        "trace.file: cannot read",
    ),
    (
        "parquet-without-timestamp",
        {"trace": {"file": "../traces/no-timestamp.parquet"}},
        "trace.file: cannot read",
    ),
    ("unknown-backend", {"backend": {"kind": "lambda"}}, "backend.kind: got 'lambda'"),
    (
        "unknown-observable",
        {"observe": {"utilization": "latency"}},
        "observe.utilization: unknown observable 'latency'",
    ),
    (
        "observable-the-backend-lacks",
        {"observe": {"utilization": "backlog"}},
        "web: spec.metrics[0]: reads 'backlog' (observe.utilization), which a deployment",
    ),
    (
        "pubsub-metric-on-a-deployment",
        {"policies": ["policies/queue.yaml"]},
        "workers: spec.metrics[0]: reads 'backlog' (source)",
    ),
    (
        "metric-without-an-observable",
        {"policies": [STEP_POLICY]},
        "steps: spec.metrics[0]: observe.latency: cannot infer",
    ),
    (
        "policy-named-like-a-baseline",
        {"policies": [{**WEB, "metadata": {"name": "oracle"}}]},
        "policies: a policy named 'oracle'",
    ),
    ("missing-policy-file", {"policies": ["policies/nope.yaml"]}, "policies[0]: no such policy"),
    ("zero-capacity", {"backend": {"capacityPerReplica": 0}}, "backend.capacityPerReplica: must"),
    ("missing-name", {"name": None}, "name: required field is missing"),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_scenarios_fail_with_the_field_named(
    lab: Path, case: str, change: dict[str, Any], message: str
) -> None:
    for name, text in BAD_FILES.items():
        (lab / "traces" / name).write_text(text)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"time": [1, 2], "value": [1.0, 2.0]}), lab / "traces" / "no-timestamp.parquet"
    )
    path = lab / "scenarios" / f"bad-{case}.yaml"
    path.write_text(yaml.safe_dump(contract_example(**change)))
    proc = run_cli("simulate", str(path), "--json", str(lab / f"bad-{case}.json"))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"{path}: " in proc.stderr
    assert message in proc.stderr, proc.stderr
    assert not (lab / f"bad-{case}.json").exists()


def test_missing_scenario_file_exits_nonzero_without_traceback(lab: Path) -> None:
    proc = run_cli("simulate", str(lab / "scenarios" / "absent.yaml"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr


# -- in-process checks -------------------------------------------------------------------------


def _scenario(tmp: Path, doc: dict[str, Any]) -> Path:
    (tmp / "scenarios" / "policies").mkdir(parents=True, exist_ok=True)
    (tmp / "traces").mkdir(exist_ok=True)
    for src, name in ((WEB, "web"),):
        (tmp / "scenarios" / "policies" / f"{name}.yaml").write_text(yaml.safe_dump(src))
    path = tmp / "scenarios" / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_db_records_runs_under_sim_scenario_policy(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    from gemini.simulate.commands import simulate_command
    from gemini.store import open_store

    (tmp_path / "traces").mkdir(exist_ok=True)
    _write_csv(tmp_path / "traces" / "t.csv", [(60 * i, 600.0 + 30 * i) for i in range(30)])
    doc = contract_example(trace={"file": "../traces/t.csv"})
    path = _scenario(tmp_path, doc)
    url = f"sqlite:///{tmp_path / 'd.db'}"
    assert simulate_command(path, None, None, None, url) == 0
    store = open_store(url)
    try:
        assert store.count("sim/nasa-web-web") == 120
        assert store.count("sim/nasa-web-hpa-default") == 120
        assert store.count("default/web") == 0
        assert store.count("default/hpa-default") == 0
        names = {(s.namespace, s.name) for s in store.policies()}
        assert names == {("sim", "nasa-web-web"), ("sim", "nasa-web-hpa-default")}
    finally:
        store.close()


def test_shadow_and_paused_policies_are_replayed_as_acting(tmp_path: Path) -> None:
    from gemini.simulate.runner import simulate
    from gemini.simulate.scenario import load_scenario

    (tmp_path / "traces").mkdir()
    _write_csv(tmp_path / "traces" / "t.csv", _rows_diurnal(0.25, random.Random(1)))
    shadow = {**WEB, "metadata": {"name": "shadow"}, "spec": {**WEB["spec"], "mode": "Shadow"}}
    paused = {**WEB, "metadata": {"name": "paused"}, "spec": {**WEB["spec"], "mode": "Paused"}}
    doc = contract_example(
        trace={"file": "../traces/t.csv"}, policies=["policies/web.yaml", shadow, paused]
    )
    out = simulate(load_scenario(_scenario(tmp_path, doc))).to_dict()["results"]
    hours = {r["name"]: r["capacityHours"] for r in out}
    assert hours["shadow"] == hours["paused"] == hours["web"]
    assert next(r for r in out if r["name"] == "web")["scaleEvents"] > 0


def test_hpa_default_reads_utilization_whatever_observe_maps(tmp_path: Path) -> None:
    """`observe:` is for the user's metrics; the baseline's metric shares the name
    `utilization` but must keep tracking utilization."""
    from gemini.simulate.runner import simulate
    from gemini.simulate.scenario import load_scenario

    (tmp_path / "traces").mkdir()
    _write_csv(tmp_path / "traces" / "t.csv", _rows_diurnal(0.25, random.Random(2)))
    by_load = {
        **WEB,
        "spec": {
            **WEB["spec"],
            "metrics": [
                {
                    **WEB["spec"]["metrics"][0],
                    "target": {"type": "AverageValue", "averageValue": "1.2"},
                }
            ],
        },
    }
    plain = contract_example(trace={"file": "../traces/t.csv"}, baselines=["hpa-default"])
    mapped = {**plain, "policies": [by_load], "observe": {"utilization": "load"}}
    a = simulate(load_scenario(_scenario(tmp_path, plain))).to_dict()["results"][-1]
    b = simulate(load_scenario(_scenario(tmp_path, mapped))).to_dict()["results"][-1]
    assert a["name"] == b["name"] == "hpa-default"
    assert a == {**b, "oracleRatio": a["oracleRatio"]}


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(st.floats(0, 5000, allow_nan=False), min_size=3, max_size=40),
    spacing=st.sampled_from([15, 60, 300]),
    startup=st.sampled_from([0, 120]),
    kind=st.sampled_from(["deployment", "queue", "bigtable"]),
)
def test_oracle_never_violates_and_only_violating_runs_cost_less(
    tmp_path: Path, values: list[float], spacing: int, startup: int, kind: str
) -> None:
    from gemini.simulate.runner import simulate
    from gemini.simulate.scenario import load_scenario

    (tmp_path / "traces").mkdir(exist_ok=True)
    _write_csv(tmp_path / "traces" / "t.csv", [(i * spacing, v) for i, v in enumerate(values)])
    doc = contract_example(
        trace={"file": "../traces/t.csv"},
        backend={"kind": kind, "startupSeconds": startup},
        policies=[BIGTABLE] if kind == "bigtable" else ["policies/web.yaml"],
    )
    data = simulate(load_scenario(_scenario(tmp_path, doc))).to_dict()
    oracle = next(r for r in data["results"] if r["name"] == "oracle")
    assert oracle["sloViolationMinutes"] == 0
    for r in data["results"]:
        if r["capacityHours"] < oracle["capacityHours"] - 1e-9:
            assert r["sloViolationMinutes"] > 0, r


# -- the tuner's search space -------------------------------------------------------------------

TUNED = [
    ("hpa-start", {"metricWindow": 0, "scaleDownPods": 1}, (0, "Last", None)),
    (
        "max-window",
        {"metricWindow": 600, "scaleDownPods": 3, "scaleDownPercent": 10},
        (600, "Max", 3),
    ),
    (
        "per-direction-tolerance",
        {"scaleUpTolerance": 0.02, "scaleDownTolerance": 0.4, "scaleDownPercent": 50},
        (0, "Last", 1),
    ),
]


@pytest.mark.parametrize(("case", "params", "expected"), TUNED, ids=[t[0] for t in TUNED])
def test_tuner_parameters_reach_the_manifest(
    case: str, params: dict[str, float], expected: tuple[int, str, int | None]
) -> None:
    from gemini.policy.spec import parse_policy
    from gemini.simulate.tuner import apply_params, search_space, starting_points

    base = parse_policy(WEB)
    names = {p.name for p in search_space(base)}
    assert set(params) <= names
    tuned = apply_params(base, {"scaleDownPods": 1, **params})
    m = tuned.spec.metrics[0]
    window, function, pods = expected
    assert (m.window_seconds, m.window_function.value) == (window, function)
    down = tuned.spec.behavior.scale_down
    if pods is not None and "scaleDownPercent" in params:
        assert [(p.type.value, p.value) for p in down.policies][-1] == ("Pods", pods)
    if "scaleUpTolerance" in params:
        assert tuned.spec.behavior.scale_up.tolerance == pytest.approx(0.02)
        assert down.tolerance == pytest.approx(0.4)
    starts = starting_points(base, search_space(base))
    # HPA's defaults, the same smoothed, the same following the load without stabilisation
    assert [s["metricWindow"] for s in starts] == [0, 300, 0]
    assert starts[0]["scaleUpTolerance"] == starts[0]["scaleDownTolerance"] == 0.1
    assert {k: v for k, v in starts[2].items() if starts[0][k] != v} == {
        "scaleDownWindow": 0,
        "scaleUpTolerance": 0.0,
        "scaleDownTolerance": 0.0,
    }


def test_every_metric_target_is_searched_and_starts_at_the_policy_own() -> None:
    """A queue policy reading arrivals and backlog scales to the larger proposal, so the
    backlog target sets the cost as much as the first metric's: both are parameters."""
    from gemini.policy.spec import parse_policy
    from gemini.simulate.tuner import apply_params, search_space, starting_points

    arrivals = {
        "name": "arrivals",
        "source": {"prometheus": {"serverAddress": "http://p:9090", "query": "rate(x[1m])"}},
        "target": {"type": "AverageValue", "averageValue": 0.07},
    }
    cpu = {**arrivals, "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 65}}
    doc = {
        **QUEUE,
        "spec": {**QUEUE["spec"], "metrics": [arrivals, *QUEUE["spec"]["metrics"], cpu]},
    }
    base = parse_policy(doc)
    space = {p.name: p for p in search_space(base)}
    assert (space["target"].low, space["target"].high) == pytest.approx((0.028, 0.175))
    assert (space["target.backlog"].low, space["target.backlog"].high) == pytest.approx((12, 75))
    assert space["target.backlog"].log and not space["target.backlog"].integer
    assert (space["target.cpu"].low, space["target.cpu"].high, space["target.cpu"].integer) == (
        30,
        95,
        True,
    )
    start = starting_points(base, list(space.values()))[0]
    assert start["target"] == pytest.approx(0.07)
    assert start["target.backlog"] == pytest.approx(30) and start["target.cpu"] == 65
    tuned = apply_params(base, {"target": 0.1, "target.backlog": 45.5, "target.cpu": 80.4})
    targets = [m.target for m in tuned.spec.metrics]
    assert [t.average_value for t in targets[:2]] == [0.1, 45.5]
    assert targets[2].average_utilization == 80


@pytest.mark.parametrize(
    ("factor", "expected"), [(None, 0.9), (0.5, 0.5), (1.0, 1.0)], ids=["default", "half", "one"]
)
def test_tune_budget_is_hpa_default_training_violations_times_the_factor(
    tmp_path: Path, factor: float | None, expected: float
) -> None:
    from gemini.simulate.scenario import load_scenario
    from gemini.simulate.tuner import tune

    (tmp_path / "traces").mkdir()
    _write_csv(tmp_path / "traces" / "t.csv", _rows_rough(random.Random(3))[:900])
    tune_spec: dict[str, Any] = {"decimate": 4, "demandMargin": 0}
    if factor is not None:
        tune_spec["sloBudgetFactor"] = factor
    doc = contract_example(trace={"file": "../traces/t.csv"}, tune=tune_spec)
    res = tune(load_scenario(_scenario(tmp_path, doc)), trials=1, seed=0, jobs=1)
    hpa = res.baselines["hpa-default"]["train"].slo_violation_minutes
    assert hpa > 0
    assert res.budget == pytest.approx(hpa * expected)


def test_tune_trials_and_their_budget_see_the_training_demand_raised_by_the_margin(
    tmp_path: Path,
) -> None:
    """The margin is the same as a trace `scale` 1.1 times larger: the budget is hpa-default's
    violations on that demand, and the one trial (HPA's defaults) scores what it does there.
    The reported training score is on the recorded demand."""
    from gemini.simulate.scenario import load_scenario
    from gemini.simulate.tuner import tune

    (tmp_path / "traces").mkdir()
    _write_csv(tmp_path / "traces" / "t.csv", _rows_rough(random.Random(3))[:900])
    scale = 0.016667

    def tuned(margin: float, factor: float) -> Any:
        doc = contract_example(
            trace={"file": "../traces/t.csv", "scale": scale * factor},
            # HPA's defaults as they are (a fitted target would differ between the three)
            tune={"decimate": 4, "demandMargin": margin, "fitTarget": False},
        )
        return tune(load_scenario(_scenario(tmp_path, doc)), trials=1, seed=0, jobs=1)

    with_margin, raised, nominal = tuned(0.1, 1.0), tuned(0.0, 1.1), tuned(0.0, 1.0)
    doc = with_margin.to_dict()
    assert with_margin.margin == 0.1 and doc["demandMargin"] == 0.1
    assert with_margin.budget == pytest.approx(raised.budget)
    # (not simply more: rounding to whole replicas moves hpa-default's headroom either way)
    assert with_margin.budget != with_margin.baselines["hpa-default"]["train"].slo_violation_minutes
    # the one trial (HPA's defaults on the scenario's policy) was scored on the raised demand:
    # what the same policy scores on a trace 1.1 times larger
    searched = doc["best"]["trainWithMargin"]
    assert searched["sloViolationMinutes"] == raised.train.slo_violation_minutes
    assert searched["capacityHours"] == pytest.approx(raised.train.capacity_hours, abs=1e-3)
    assert searched["capacityHours"] > nominal.train.capacity_hours * 1.05
    # the reported training score is on the recorded demand
    assert with_margin.train.capacity_hours == pytest.approx(nominal.train.capacity_hours)
    assert with_margin.train.slo_violation_minutes == nominal.train.slo_violation_minutes


def test_each_trial_target_is_fitted_to_the_budget(tmp_path: Path) -> None:
    """With `fitTarget` (the default) the search reports the best trial at the target its line
    search found: replaying that policy on the raised training demand gives the searched score,
    within the budget, and 1-3 percentage points more break the budget or (whole replicas round
    either way) cost no less."""
    from gemini.simulate.runner import grid_of, run_policy, score_run
    from gemini.simulate.scenario import load_scenario
    from gemini.simulate.tuner import _train_grid, apply_params, tune, with_margin

    (tmp_path / "traces").mkdir()
    _write_csv(tmp_path / "traces" / "t.csv", _rows_rough(random.Random(3))[:900])
    doc = contract_example(trace={"file": "../traces/t.csv"}, tune={"decimate": 4})
    sc = load_scenario(_scenario(tmp_path, doc))
    res = tune(sc, trials=3, seed=0, jobs=1)
    out = res.to_dict()
    assert out["fitTarget"] is True and out["replays"] > out["trials"] == 3
    assert res.feasible and res.searched["sloViolationMinutes"] <= res.budget

    train, _ = grid_of(sc).split(sc.spec.tune.train_fraction)
    raised = _train_grid(sc, train).scaled(1.0 + res.margin)

    def replay(target: float) -> tuple[float, float]:
        params = {**res.params, "target": target}
        policy = with_margin(apply_params(sc.policies[0], params), res.margin)
        s = score_run(sc, run_policy(sc, policy, raised))
        return s.capacity_hours, s.slo_violation_minutes

    target = res.params["target"]
    assert res.policy.spec.metrics[0].target.average_utilization == target
    hours, violations = replay(target)
    assert hours == pytest.approx(res.searched["capacityHours"], abs=1e-3)
    assert violations == res.searched["sloViolationMinutes"]
    assert target != 70  # not HPA's, where the search started
    for up in (1, 2, 3):
        up_hours, up_violations = replay(target + up)
        assert up_violations > res.budget or up_hours >= hours, up


def test_a_value_target_is_fitted_on_its_own_scale_and_reaches_the_manifest(
    tmp_path: Path,
) -> None:
    """An AverageValue target (load per replica) is fitted in 2 % steps from the policy's own,
    to 3 significant digits: the manifest carries exactly the fitted value, and the search kept
    the budget."""
    from gemini.simulate.scenario import load_scenario
    from gemini.simulate.tuner import FLOAT_STEP, tune

    per_replica = {
        "name": "load",
        "source": {"prometheus": {"serverAddress": "http://prometheus:9090", "query": "up"}},
        "target": {"type": "AverageValue", "averageValue": 1.2},
    }
    policy = {**WEB, "spec": {**WEB["spec"], "metrics": [per_replica]}}
    (tmp_path / "traces").mkdir()
    _write_csv(tmp_path / "traces" / "t.csv", _rows_rough(random.Random(3))[:900])
    doc = contract_example(
        trace={"file": "../traces/t.csv"}, policies=[policy], tune={"decimate": 4}
    )
    res = tune(load_scenario(_scenario(tmp_path, doc)), trials=3, seed=0, jobs=1)
    target = res.params["target"]
    assert res.policy.spec.metrics[0].target.average_value == target
    assert res.feasible and res.searched["sloViolationMinutes"] <= res.budget
    # on the lattice through the policy's own 1.2 (each step to 3 significant digits, so
    # within half of the third digit), not rounded to a whole number
    k = round(math.log(target / 1.2) / math.log1p(FLOAT_STEP))
    assert target == float(f"{1.2 * (1 + FLOAT_STEP) ** k:.3g}") and target != round(target)


def test_a_trial_on_the_raised_demand_has_its_max_replicas_raised_too() -> None:
    from gemini.policy.spec import MAX_REPLICAS, parse_policy
    from gemini.simulate.tuner import with_margin

    policy = parse_policy({**WEB, "spec": {**WEB["spec"], "maxReplicas": 500}})
    assert with_margin(policy, 0.05).spec.max_replicas == 525
    assert with_margin(policy, 0.0) is policy
    huge = parse_policy({**WEB, "spec": {**WEB["spec"], "maxReplicas": MAX_REPLICAS}})
    assert with_margin(huge, 0.05).spec.max_replicas == MAX_REPLICAS


def test_a_held_back_part_that_starts_masked_starts_at_the_first_scored_step(
    tmp_path: Path,
) -> None:
    """An excluded window across the split: the held-back replay starts at the size the
    oracle needs at the first scored step, not at the floor it needs inside the window."""
    from gemini.simulate.runner import grid_of, slo_of
    from gemini.simulate.scenario import load_scenario
    from gemini.simulate.scoring import units_needed
    from gemini.simulate.tuner import held_back_initial

    (tmp_path / "traces").mkdir()
    # 600/min before the window, 1200 in its last minutes and the first ones after it, 2400
    # from minute 85: only the first scored step's size is 12
    levels = [600.0 if k < 75 else 1200.0 if k < 85 else 2400.0 for k in range(100)]
    _write_csv(tmp_path / "traces" / "t.csv", [(60.0 * k, v) for k, v in enumerate(levels)])
    cut = T0 + timedelta(minutes=70)
    doc = contract_example(
        trace={
            "file": "../traces/t.csv",
            "exclude": [
                {
                    "start": (cut - timedelta(minutes=5)).isoformat(),
                    "end": (cut + timedelta(minutes=10)).isoformat(),
                }
            ],
        },
        tune={"trainFraction": 0.7},
    )
    scenario = load_scenario(_scenario(tmp_path, doc))
    _, test = grid_of(scenario).split(0.7)
    assert test.masked[0] and not all(test.masked)
    need = units_needed(1200 * 0.016667, scenario.model.capacity_per_replica, slo_of(scenario))
    assert need == 12
    assert held_back_initial(scenario, test) == need


def test_a_policy_capped_below_the_peak_is_warned_about(lab: Path) -> None:
    capped = {**WEB, "metadata": {"name": "capped"}, "spec": {**WEB["spec"], "maxReplicas": 3}}
    doc = contract_example(trace={"file": "../traces/three.csv"}, policies=[capped])
    path = lab / "scenarios" / "capped.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = lab / "capped.json"
    proc = run_cli("simulate", str(path), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "policy capped: spec.maxReplicas 3 is below the 23 the oracle needs" in proc.stderr
    data = json.loads(out.read_text())
    assert data["warnings"] and "capped" in data["warnings"][0]
    capped_run = next(r for r in data["results"] if r["name"] == "capped")
    assert capped_run["sloViolationMinutes"] > 0


@pytest.mark.parametrize(
    ("storage_tb", "max_replicas", "warned"),
    [(40, 3, False), (0, 2, True)],
    ids=["storage-floor-above-max-covers-the-load", "load-peak-above-max-and-floor"],
)
def test_the_capped_warning_compares_the_load_peak_not_the_storage_floor(
    lab: Path, storage_tb: float, max_replicas: int, warned: bool
) -> None:
    # The load (three.csv over 60: at most 40/s, on 15/s nodes at 90 %) needs 3 nodes. 40 TB at
    # 5 TB x 0.7 per node is a storage floor of 12 nodes, which the engine keeps even above
    # maxReplicas 3: that policy is not capped. Without storage, maxReplicas 2 is.
    bt = {**BIGTABLE, "spec": {**BIGTABLE["spec"], "maxReplicas": max_replicas}}
    doc = contract_example(
        trace={"file": "../traces/three.csv", "scale": 1 / 60},
        backend={
            "kind": "bigtable",
            "capacityPerReplica": 15.0,
            "initialReplicas": 12 if storage_tb else 2,
            "storageTb": storage_tb,
        },
        policies=[bt],
        stepSeconds=60,
    )
    path = lab / "scenarios" / "floor.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = lab / "floor.json"
    proc = run_cli("simulate", str(path), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    oracle = next(r for r in data["results"] if r["name"] == "oracle")
    assert oracle["maxReplicas"] == (12 if storage_tb else 3)
    if warned:
        assert "policy bt: spec.maxReplicas 2 is below the 3 the oracle needs" in proc.stderr
        assert len(data["warnings"]) == 1
    else:
        assert "warning" not in proc.stderr
        assert "warnings" not in data
