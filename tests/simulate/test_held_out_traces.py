"""Held-out traces: adversarial but valid traces and scenarios through the real `gemini simulate`.

Every valid case must run (exit 0, no traceback), write the contract's JSON keys, and keep the
baselines' promises: the oracle never violates, and no run with zero violation minutes costs
fewer capacity-hours than the oracle. Every invalid case must fail with exit 1 and one line per
problem on stderr naming the scenario file and the field (`trace.file`, the row, ...).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from gemini.cli import app
from tests.simulate.helpers import CONTRACT_RESULT_KEYS as RESULT_KEYS
from tests.simulate.helpers import CONTRACT_TOP_KEYS as TOP_KEYS
from tests.simulate.helpers import policy_doc

T0 = datetime(2024, 3, 1, tzinfo=UTC)
NULL = "<null>"  # an override that writes the key with no value (`policies:`)


# --- building blocks ---------------------------------------------------------------------------


def z(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def rows_every(values: list[float], seconds: float) -> list[tuple[str, str]]:
    return [(z(T0 + timedelta(seconds=i * seconds)), repr(v)) for i, v in enumerate(values)]


def csv_bytes(
    rows: list[tuple[str, str]],
    *,
    header: str = "timestamp,value",
    newline: str = "\n",
    bom: bool = False,
) -> bytes:
    text = newline.join([header, *(f"{a},{b}" for a, b in rows)]) + newline
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def queue_policy(name: str = "worker") -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling.gemini.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": name},
        "spec": {
            "target": {"kubernetes": {"name": name}},
            "minReplicas": 1,
            "maxReplicas": 50,
            "metrics": [
                {
                    "name": "backlog",
                    "source": {"pubsub": {"subscription": "projects/p/subscriptions/s"}},
                    "target": {"type": "AverageValue", "averageValue": 5},
                }
            ],
        },
    }


def bigtable_policy(name: str = "bigtable-cpu") -> dict[str, Any]:
    where = {"project": "p", "instance": "i", "cluster": "c"}
    return {
        "apiVersion": "autoscaling.gemini.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": name},
        "spec": {
            "target": {"bigtable": dict(where)},
            "minReplicas": 1,
            "maxReplicas": 60,
            "metrics": [
                {
                    "name": "cpu",
                    "source": {"bigtable": {**where, "metric": "cpu_load"}},
                    "target": {"type": "Utilization", "averageUtilization": 60},
                }
            ],
            "behavior": {
                "scaleUp": {"policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}
            },
        },
    }


def scenario_doc(trace_file: str = "trace.csv", **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "held-out",
        "trace": {"file": trace_file, "kind": "demand"},
        "backend": {
            "kind": "deployment",
            "capacityPerReplica": 1.0,
            "startupSeconds": 60,
            "initialReplicas": 2,
        },
        "slo": {"maxUtilization": 0.9},
        "metrics": {"delaySeconds": 30, "sampleSeconds": 60},
        "policies": ["web.yaml"],
        "baselines": ["oracle", "static-peak", "hpa-default"],
    }
    for key, value in overrides.items():
        if value is None:
            doc.pop(key, None)
        elif value == NULL:
            doc[key] = None
        elif isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return doc


def write_case(
    tmp: Path, trace: bytes | Callable[[Path], None], name: str, doc: dict[str, Any]
) -> Path:
    target = tmp / name
    if callable(trace):
        trace(target)
    else:
        target.write_bytes(trace)
    (tmp / "web.yaml").write_text(yaml.safe_dump(policy_doc()))
    path = tmp / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run(path: Path, out: Path) -> Result:
    return CliRunner().invoke(app, ["simulate", str(path), "--json", str(out)])


def no_traceback(result: Result) -> None:
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), (
        f"crashed with {type(exc).__name__}: {exc}\n{result.output}"
    )
    assert "Traceback" not in result.output


def check_invariants(data: dict[str, Any]) -> None:
    assert set(data) >= TOP_KEYS, data
    assert data["steps"] >= 1
    results = data["results"]
    assert results
    for r in results:
        assert set(r) >= RESULT_KEYS, r
        for key in ("capacityHours", "sloViolationMinutes", "meanReplicas"):
            assert math.isfinite(r[key]) and r[key] >= 0, (key, r)
    oracles = [r for r in results if r["name"] == "oracle"]
    if not oracles:
        return
    oracle = oracles[0]
    assert oracle["sloViolationMinutes"] == 0, oracle
    for r in results:
        if r["sloViolationMinutes"] == 0:
            assert r["capacityHours"] >= oracle["capacityHours"] - 1e-9, (r, oracle)


def simulate_ok(path: Path) -> dict[str, Any]:
    out = path.parent / "out.json"
    result = run(path, out)
    no_traceback(result)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    check_invariants(data)
    return data


# --- Parquet writers ---------------------------------------------------------------------------


def parquet_strings(path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = rows_every([1.0, 3.0, 5.0, 2.0, 4.0], 60)
    table = pa.table({"timestamp": [a for a, _ in rows], "value": [float(b) for _, b in rows]})
    pq.write_table(table, path)


def parquet_timestamps(tz: str | None) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        times = [T0.replace(tzinfo=None) + timedelta(minutes=i) for i in range(6)]
        table = pa.table(
            {
                "timestamp": pa.array(times, type=pa.timestamp("us", tz=tz)),
                "value": pa.array([2, 4, 6, 8, 3, 1], type=pa.int64()),
            }
        )
        pq.write_table(table, path)

    return write


def parquet_nanoseconds(path: Path) -> None:
    """What pandas writes by default: timestamp[ns] (here with nanoseconds that are not 0)."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    base = int(T0.timestamp()) * 10**9
    times = [base + i * 60 * 10**9 + 123 for i in range(len(WAVE))]
    table = pa.table(
        {
            "timestamp": pa.array(times, type=pa.timestamp("ns", tz="UTC")),
            "value": pa.array(WAVE, type=pa.float32()),
        }
    )
    pq.write_table(table, path)


def parquet_table(columns: dict[str, list[Any]]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        pq.write_table(pa.table(columns), path)

    return write


# --- valid cases -------------------------------------------------------------------------------


@dataclass
class Valid:
    id: str
    trace: bytes | Callable[[Path], None]
    overrides: dict[str, Any] = field(default_factory=dict)
    file: str = "trace.csv"


WAVE = [1.0, 2.5, 4.0, 7.5, 9.0, 6.0, 3.0, 1.5, 0.5, 2.0, 8.0, 12.0, 4.0, 1.0]
IRREGULAR_GAPS = [0, 1, 3, 60, 7200, 5, 900, 1, 1, 3600, 30, 10800, 2]


def irregular_rows() -> list[tuple[str, str]]:
    out, t = [], T0
    for i, gap in enumerate(IRREGULAR_GAPS):
        t += timedelta(seconds=gap)
        out.append((z(t), repr(WAVE[i % len(WAVE)])))
    return out


VALID = [
    Valid("two-rows", csv_bytes(rows_every([3.0, 6.0], 60))),
    Valid("all-zeros", csv_bytes(rows_every([0.0] * 30, 60))),
    Valid("constant", csv_bytes(rows_every([3.0] * 30, 60))),
    Valid(
        "huge-values-matched-capacity",
        csv_bytes(rows_every([v * 1e9 for v in WAVE], 60)),
        {"backend": {"capacityPerReplica": 1e8}},
    ),
    Valid("huge-values-billions-of-replicas", csv_bytes(rows_every([v * 1e9 for v in WAVE], 60))),
    Valid("tiny-values", csv_bytes(rows_every([v * 1e-9 for v in WAVE], 60))),
    Valid(
        "tiny-values-matched-capacity",
        csv_bytes(rows_every([v * 1e-9 for v in WAVE], 60)),
        {"backend": {"capacityPerReplica": 1e-9}},
    ),
    Valid(
        "offset-timestamps",
        csv_bytes(
            [
                (
                    (T0 + timedelta(minutes=i))
                    .astimezone(timezone(timedelta(hours=2)))
                    .isoformat(),
                    repr(v),
                )
                for i, v in enumerate(WAVE)
            ]
        ),
    ),
    Valid(
        "mixed-offsets-and-fractional-seconds",
        csv_bytes(
            [
                ("2024-03-01T00:00:00.250Z", "1"),
                ("2024-03-01T02:01:00.5+02:00", "4"),
                ("2024-03-01T00:02:00.123456+00:00", "6"),
                ("2024-03-01T00:03:00.123456789Z", "2"),
                ("2024-02-29T19:04:00-05:00", "3"),
                ("2024-03-01 00:05:00Z", "5"),
                ("2024-03-01T00:06:00", "1"),
            ]
        ),
    ),
    Valid("irregular-sampling", csv_bytes(irregular_rows())),
    Valid("coarser-than-step", csv_bytes(rows_every([2.0, 9.0, 1.0, 5.0], 3600))),
    Valid(
        "finer-than-step-1s",
        csv_bytes(rows_every([WAVE[(i // 20) % len(WAVE)] for i in range(900)], 1)),
    ),
    Valid("parquet-string-timestamps", parquet_strings, file="trace.parquet"),
    Valid("parquet-utc-timestamps", parquet_timestamps("UTC"), file="trace.parquet"),
    Valid("parquet-naive-timestamps", parquet_timestamps(None), file="trace.parquet"),
    Valid("parquet-nanosecond-timestamps", parquet_nanoseconds, file="trace.parquet"),
    Valid(
        "parquet-daily-dates",
        parquet_table(
            {
                "timestamp": [(T0 + timedelta(days=i)).date() for i in range(4)],
                "value": [1.0, 5.0, 3.0, 2.0],
            }
        ),
        {"stepSeconds": 3600},
        file="trace.parquet",
    ),
    Valid(
        "utilization-fraction",
        csv_bytes(rows_every([0.2, 0.5, 0.9, 0.7, 0.3, 0.95, 0.1], 300)),
        {"trace": {"kind": "utilization", "recordedReplicas": 6}},
    ),
    Valid(
        "utilization-percent",
        csv_bytes(rows_every([20, 55, 90, 70, 30, 99, 10], 300)),
        {"trace": {"kind": "utilization", "recordedReplicas": 3}},
    ),
    Valid(
        "queue-backend",
        csv_bytes(rows_every(WAVE, 60)),
        {
            "backend": {"kind": "queue", "initialBacklog": 100},
            "slo": {"maxAgeSeconds": 120},
            "policies": [queue_policy()],
        },
    ),
    Valid(
        "bigtable-backend",
        csv_bytes(rows_every([v * 100 for v in WAVE], 600)),
        {
            "backend": {
                "kind": "bigtable",
                "capacityPerReplica": 250.0,
                "initialReplicas": 3,
                "storageTb": 12,
            },
            "stepSeconds": 60,
            "policies": [bigtable_policy()],
        },
    ),
    Valid(
        "inline-policies",
        csv_bytes(rows_every(WAVE, 60)),
        {"policies": [policy_doc("a", target=50), policy_doc("b", target=85)]},
    ),
    Valid("no-policies-key", csv_bytes(rows_every(WAVE, 60)), {"policies": None}),
    Valid("policies-key-without-value", csv_bytes(rows_every(WAVE, 60)), {"policies": NULL}),
    Valid("no-baselines-key", csv_bytes(rows_every(WAVE, 60)), {"baselines": None}),
    Valid("crlf", csv_bytes(rows_every(WAVE, 60), newline="\r\n")),
    Valid("header-spaces", csv_bytes(rows_every(WAVE, 60), header=" timestamp , value ")),
    Valid("header-bom", csv_bytes(rows_every(WAVE, 60), header="timestamp,value", bom=True)),
    Valid(
        "header-bom-crlf-quoted-capitalised",
        csv_bytes(rows_every(WAVE, 60), header='"Timestamp","Value"', newline="\r\n", bom=True),
    ),
    Valid(
        "extra-header-column-and-empty-trailing-cells",
        b"timestamp,value,note\n2024-03-01T00:00:00Z,1,start\n2024-03-01T00:01:00Z,4,\n"
        b"2024-03-01T00:02:00Z,2\n",
    ),
    Valid(
        "blank-lines-and-padding",
        b"timestamp,value\n\n 2024-03-01T00:00:00Z , 1.5 \n\n2024-03-01T00:01:00Z,3\n\n",
    ),
    Valid(
        "long-gap-at-a-high-value",
        csv_bytes(
            [
                (z(T0 + timedelta(minutes=m)), repr(v))
                for m, v in [
                    (0, 1.0),
                    (1, 1.0),
                    (2, 1.0),
                    (3, 1.0),
                    (4, 30.0),
                    (120, 1.0),
                    (121, 1.0),
                    (122, 1.0),
                    (123, 1.0),
                ]
            ]
        ),
        {"backend": {"startupSeconds": 900}},
    ),
    Valid(
        "capped-policy-over-a-long-gap",
        csv_bytes(
            [
                (z(T0 + timedelta(minutes=m)), repr(v))
                for m, v in [
                    (0, 1.0),
                    (1, 1.0),
                    (2, 1.0),
                    (3, 1.0),
                    (4, 30.0),
                    (240, 1.0),
                    (241, 1.0),
                    (242, 1.0),
                    (243, 1.0),
                ]
            ]
        ),
        {"policies": [policy_doc("web", maxReplicas=3)], "baselines": ["oracle"]},
    ),
    Valid(
        "bigtable-initial-below-storage-floor",
        csv_bytes(rows_every([1.0] * 20, 60)),
        {
            "backend": {
                "kind": "bigtable",
                "capacityPerReplica": 250.0,
                "initialReplicas": 1,
                "storageTb": 12,
            },
            "stepSeconds": 60,
            "policies": [bigtable_policy()],
        },
    ),
    Valid(
        "bigtable-policy-capped-below-the-storage-floor",
        csv_bytes(rows_every([1.0] * 20, 60)),
        {
            "backend": {
                "kind": "bigtable",
                "capacityPerReplica": 250.0,
                "initialReplicas": 1,
                "storageTb": 12,
            },
            "stepSeconds": 60,
            "policies": [
                {**bigtable_policy(), "spec": {**bigtable_policy()["spec"], "maxReplicas": 2}}
            ],
        },
    ),
    Valid(
        "load-below-an-absolute-epsilon-on-zero-replicas",
        csv_bytes(rows_every([0.95e-9] * 10, 60)),
        {
            "backend": {"initialReplicas": 0, "startupSeconds": 0},
            "policies": [policy_doc("web", minReplicas=0)],
        },
    ),
    Valid(
        "excluded-window-everything",
        csv_bytes(rows_every(WAVE, 60)),
        {"trace": {"exclude": [{"start": "2024-01-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"}]}},
    ),
    Valid(
        "start-zero-replicas",
        csv_bytes(rows_every(WAVE, 60)),
        {"backend": {"initialReplicas": 0, "startupSeconds": 0}},
    ),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in VALID])
def test_valid_held_out_trace_runs_and_keeps_the_invariants(tmp_path: Path, case: Valid) -> None:
    path = write_case(tmp_path, case.trace, case.file, scenario_doc(case.file, **case.overrides))
    simulate_ok(path)


# --- invalid cases -----------------------------------------------------------------------------


@dataclass
class Invalid:
    id: str
    trace: bytes | Callable[[Path], None] | None
    expect: list[str]  # fragments the error lines must contain
    overrides: dict[str, Any] = field(default_factory=dict)
    file: str = "trace.csv"


INVALID = [
    Invalid(
        "non-increasing",
        csv_bytes([(z(T0), "1"), (z(T0 + timedelta(minutes=1)), "2"), (z(T0), "3")]),
        ["trace.file", "row 4.timestamp"],
    ),
    Invalid(
        "duplicate-timestamp",
        csv_bytes([(z(T0), "1"), (z(T0), "2")]),
        ["trace.file", "row 3.timestamp"],
    ),
    Invalid("nan", csv_bytes(rows_every([1.0, math.nan, 2.0], 60)), ["trace.file", "row 3.value"]),
    Invalid(
        "infinity",
        csv_bytes([(z(T0), "1"), (z(T0 + timedelta(1)), "inf")]),
        ["trace.file", "row 3.value"],
    ),
    Invalid(
        "negative",
        csv_bytes(rows_every([1.0, 2.0, -0.5, 2.0], 60)),
        ["trace.file", "row 4.value", "negative"],
    ),
    Invalid(
        "not-a-number",
        csv_bytes([(z(T0), "1"), (z(T0 + timedelta(1)), "lots")]),
        ["trace.file", "row 3.value"],
    ),
    Invalid(
        "bad-timestamp",
        csv_bytes([(z(T0), "1"), ("yesterday", "2")]),
        ["trace.file", "row 3.timestamp"],
    ),
    Invalid(
        "empty-timestamp", csv_bytes([(z(T0), "1"), ("", "2")]), ["trace.file", "row 3.timestamp"]
    ),
    Invalid("missing-value-column", b"timestamp\n2024-03-01T00:00:00Z\n", ["trace.file", "header"]),
    Invalid("wrong-header", b"time,val\n2024-03-01T00:00:00Z,1\n", ["trace.file", "header"]),
    Invalid(
        "short-row",
        b"timestamp,value\n2024-03-01T00:00:00Z,1\n2024-03-01T00:01:00Z\n",
        ["trace.file", "row 3"],
    ),
    Invalid("empty-file", b"", ["trace.file"]),
    # the row where the quote opens, and not the rest of the file in the message
    Invalid(
        "unclosed-quote",
        b'timestamp,value\n2024-03-01T00:00:00Z,1\n"2024-03-01T00:01:00Z,2\n'
        + b"".join(b"2024-03-01T00:%02d:00Z,3\n" % m for m in range(2, 60)),
        ["trace.file", "row 3: a quote opened here closes 58 lines later (or never)", " ...]"],
    ),
    Invalid(
        "underscore-in-a-number",
        b"timestamp,value\n2024-03-01T00:00:00Z,1\n2024-03-01T00:01:00Z,1_000\n",
        ["trace.file", "row 3.value", "not a number: '1_000'"],
    ),
    Invalid(
        "decimal-comma",
        b"timestamp,value\n2024-03-01T00:00:00Z,1\n2024-03-01T00:01:00Z,1,5\n",
        ["trace.file", "row 3"],
    ),
    Invalid(
        "decimal-comma-under-a-trailing-comma-header",
        b"timestamp,value,\n2024-03-01T00:00:00Z,1,\n2024-03-01T00:01:00Z,1,5\n",
        ["trace.file", "row 3"],
    ),
    Invalid(
        "scale-overflows",
        csv_bytes(rows_every([1.0, 1e300], 60)),
        ["trace.scale", "overflow"],
        {"trace": {"scale": 1e10}},
    ),
    # one sample has no interval to hold it over: an error (as test_acceptance pins), not a guess
    Invalid("one-row", csv_bytes([(z(T0), "5.0")]), ["trace", "fewer than 2 samples"]),
    Invalid("header-only", b"timestamp,value\n", ["trace", "fewer than 2 samples"]),
    Invalid("not-utf8", b"timestamp,value\n\xff\xfe,1\n", ["trace.file", "UTF-8"]),
    Invalid("missing-file", None, ["trace.file", "no such file"]),
    Invalid(
        "span-selects-nothing",
        csv_bytes(rows_every(WAVE, 60)),
        ["trace", "fewer than 2 samples"],
        {"trace": {"start": "2030-01-01T00:00:00Z"}},
    ),
    Invalid(
        "parquet-missing-column",
        parquet_table({"timestamp": ["2024-03-01T00:00:00Z"], "load": [1.0]}),
        ["trace.file"],
        file="trace.parquet",
    ),
    Invalid(
        "parquet-null-value",
        parquet_table({"timestamp": [z(T0), z(T0 + timedelta(minutes=1))], "value": [1.0, None]}),
        ["trace.file", "row 3.value"],
        file="trace.parquet",
    ),
    Invalid(
        "parquet-null-timestamp",
        parquet_table({"timestamp": [z(T0), None], "value": [1.0, 2.0]}),
        ["trace.file", "row 3.timestamp"],
        file="trace.parquet",
    ),
    Invalid(
        "parquet-negative",
        parquet_table({"timestamp": [z(T0), z(T0 + timedelta(minutes=1))], "value": [1.0, -2.0]}),
        ["trace.file", "row 3.value", "negative"],
        file="trace.parquet",
    ),
    Invalid("not-parquet", b"timestamp,value\n", ["trace.file"], file="trace.parquet"),
    Invalid(
        "utilization-without-recorded-replicas",
        csv_bytes(rows_every(WAVE, 60)),
        ["trace.recordedReplicas: required"],
        {"trace": {"kind": "utilization"}},
    ),
    Invalid(
        "zero-capacity",
        csv_bytes(rows_every(WAVE, 60)),
        ["backend.capacityPerReplica", "must be > 0"],
        {"backend": {"capacityPerReplica": 0}},
    ),
    Invalid(
        "queue-metric-on-deployment",
        csv_bytes(rows_every(WAVE, 60)),
        ["worker: spec.metrics[0]", "backlog"],
        {"policies": [queue_policy()]},
    ),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in INVALID])
def test_invalid_held_out_input_fails_with_one_clear_line(tmp_path: Path, case: Invalid) -> None:
    doc = scenario_doc(case.file, **case.overrides)
    if case.trace is None:
        path = write_case(tmp_path, b"", "unused.csv", doc)
    else:
        path = write_case(tmp_path, case.trace, case.file, doc)
    out = tmp_path / "out.json"
    result = run(path, out)
    no_traceback(result)
    assert result.exit_code == 1, result.output
    assert not out.exists()
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, result.output
    for line in lines:
        assert line.startswith(f"{path}: "), line
    text = "\n".join(lines)
    for fragment in case.expect:
        assert fragment in text, (fragment, text)


@contextmanager
def local_zone(name: str) -> Iterator[None]:
    """The process's local time zone set to `name` for the block (TZ and tzset)."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


def test_span_without_an_offset_is_utc_whatever_the_local_zone(tmp_path: Path) -> None:
    doc = scenario_doc(
        trace={
            "start": "2024-03-01T00:30:00",
            "exclude": [{"start": "2024-03-01T00:40:00", "end": "2024-03-01T00:50:00"}],
        },
        policies=[],
    )
    path = write_case(tmp_path, csv_bytes(rows_every([1.0] * 60, 60)), "trace.csv", doc)
    with local_zone("America/New_York"):
        data = simulate_ok(path)
    # 00:30Z to 01:00Z at 15 s steps (read as New York time, the span would be empty)
    assert data["steps"] == 120
    # the excluded 10 minutes need no capacity (UTC too: 20 of 30 minutes are scored)
    oracle = next(r for r in data["results"] if r["name"] == "oracle")
    assert oracle["capacityHours"] == pytest.approx(2 * 20 / 60, abs=1e-4)


@pytest.mark.parametrize("tz", [None, "UTC", "America/New_York"], ids=["naive", "utc", "new-york"])
def test_parquet_timestamps_are_instants_in_utc_whatever_the_local_zone(
    tmp_path: Path, tz: str | None
) -> None:
    """Naive Parquet timestamps are UTC (like CSV's); zoned ones are instants (Arrow stores
    them in UTC whatever the zone it names). The machine's zone never matters."""
    from gemini.series import read_trace

    path = tmp_path / "trace.parquet"
    parquet_timestamps(tz)(path)
    with local_zone("Asia/Kolkata"):
        trace = read_trace(path)
    assert trace.times[0] == T0.timestamp()
    assert trace.times[1] - trace.times[0] == 60


@pytest.mark.parametrize("name", ["trace.parq", "trace", "trace.data"])
def test_a_parquet_file_is_read_as_parquet_whatever_its_name(tmp_path: Path, name: str) -> None:
    """Exports name Parquet files `.parq` or nothing at all; the file's own magic says what it
    is (it was read as CSV and refused as "not UTF-8 text")."""
    from gemini.series import read_trace

    path = tmp_path / name
    parquet_timestamps("UTC")(path)
    trace = read_trace(path)
    assert trace.times[0] == T0.timestamp() and len(trace) > 2


def test_empty_scenario_file_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text("")
    result = run(path, tmp_path / "out.json")
    no_traceback(result)
    assert result.exit_code == 1 and result.stderr.startswith(f"{path}: ")


# --- property: random short demand traces on a deployment ---------------------------------------


@st.composite
def short_traces(draw: st.DrawFn) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    n = draw(st.integers(2, 12))
    gaps = draw(st.lists(st.sampled_from([1, 7, 15, 40, 60, 300, 1200]), min_size=n, max_size=n))
    values = draw(
        st.lists(
            st.one_of(
                st.just(0.0),
                st.floats(0, 40, allow_nan=False, allow_infinity=False),
                st.floats(1e-12, 1e-6),
            ),
            min_size=n,
            max_size=n,
        )
    )
    rows, t = [], T0
    for gap, v in zip(gaps, values, strict=True):
        t += timedelta(seconds=gap)
        rows.append((z(t), repr(v)))
    overrides = {
        "backend": {
            "capacityPerReplica": draw(st.sampled_from([0.3, 1.0, 2.5])),
            "startupSeconds": draw(st.sampled_from([0, 30, 120])),
            "initialReplicas": draw(st.integers(0, 4)),
        },
        "slo": {"maxUtilization": draw(st.sampled_from([0.5, 0.8, 0.9, 1.0]))},
        "metrics": {"delaySeconds": draw(st.sampled_from([0, 30])), "sampleSeconds": 15},
        "policies": [policy_doc("web", target=draw(st.integers(30, 100)))],
        "stepSeconds": draw(st.sampled_from([5, 15, 60])),
    }
    return rows, overrides


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(short_traces())
def test_random_short_demand_traces_keep_the_oracle_a_lower_bound(
    case: tuple[list[tuple[str, str]], dict[str, Any]],
) -> None:
    rows, overrides = case
    with tempfile.TemporaryDirectory() as tmp:
        path = write_case(
            Path(tmp), csv_bytes(rows), "trace.csv", scenario_doc("trace.csv", **overrides)
        )
        simulate_ok(path)
