"""Scenario validation: clear errors naming the field; paths relative to the scenario file."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gemini.errors import SpecError
from gemini.simulate.commands import simulate_command
from gemini.simulate.runner import grid_of
from gemini.simulate.scenario import AUTO_MAX_STEPS, load_scenario
from tests.simulate.helpers import T0, policy_doc, write_scenario, write_series

CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "capacity-zero",
        {"backend": {"capacityPerReplica": 0}},
        "backend.capacityPerReplica: must be > 0",
    ),
    ("bad-kind", {"backend": {"kind": "lambda"}}, "backend.kind"),
    (
        "util-needs-replicas",
        {"trace": {"kind": "utilization"}},
        "trace.recordedReplicas: required when kind is utilization",
    ),
    ("missing-trace", {"trace": {"file": "nope.csv"}}, "trace.file"),
    (
        "unknown-field",
        {"backend": {"capacityPerReplicas": 1}},
        "backend.capacityPerReplicas: unknown field",
    ),
    ("bad-slo", {"slo": {"maxUtilization": 1.5}}, "slo.maxUtilization: must be <= 1"),
    ("bad-observable", {"observe": {"utilization": "latency"}}, "unknown observable 'latency'"),
    ("bad-baseline", {"baselines": ["oracle", "magic"]}, "baselines[1]"),
    (
        "missing-policy-file",
        {"policies": ["policies/missing.yaml"]},
        "policies[0]: no such policy file",
    ),
    ("bad-delay", {"metrics": {"delaySeconds": -1}}, "metrics.delaySeconds: must be >= 0"),
    # found by throwing odd but schema-valid input at `gemini simulate`: each hung, ran for
    # hours or was silently ignored
    (
        "sample-finer-than-a-float-second",
        {"metrics": {"sampleSeconds": 1e-7}},
        "metrics.sampleSeconds: must be >= 0.001",
    ),
    ("step-too-fine", {"stepSeconds": 1e-7}, "stepSeconds: must be >= 0.001"),
    (
        "step-too-many",
        {"stepSeconds": 0.001},
        "stepSeconds: 0.001 s over the trace's 0.5 days is 43,200,000 steps, more than 20,000,000",
    ),
    ("capacity-infinite", {"backend": {"capacityPerReplica": math.inf}}, "finite number"),
    ("slo-nan", {"slo": {"maxUtilization": math.nan}}, "slo.maxUtilization: must be a number, not"),
    ("scale-nan", {"trace": {"scale": math.nan}}, "trace.scale: must be a number, not NaN"),
    ("startup-infinite", {"backend": {"startupSeconds": math.inf}}, "backend.startupSeconds"),
    (
        "capacity-needs-more-replicas-than-a-float-counts",
        {"backend": {"capacityPerReplica": 1e-300}},
        "backend.capacityPerReplica: the trace's peak load 11.125/s needs 1.24e+301 replicas",
    ),
    (
        "capacity-times-utilization-underflows",
        {"backend": {"capacityPerReplica": 1e-300}, "slo": {"maxUtilization": 1e-300}},
        "needs inf replicas",
    ),
    (
        "exclude-reversed",
        {"trace": {"exclude": [{"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"}]}},
        "trace.exclude[0]: start 2024-01-02T00:00:00+00:00 is after end",
    ),
    (
        "baseline-twice",
        {"baselines": ["oracle", "hpa-default", "oracle"]},
        "baselines: oracle listed more than once",
    ),
    ("policy-item-a-number", {"policies": [5]}, "policies[0]: must be a policy file path or an"),
    # found the same way later: a traceback, or an error only after the replay under the
    # baseline manifest's field name
    (
        "start-before-year-1-in-utc",
        {"trace": {"start": "0001-01-01T00:00:00+01:00"}},
        "trace.start: 0001-01-01T00:00:00+01:00 is out of range in UTC",
    ),
    (
        "end-after-year-9999-in-utc",
        {"trace": {"end": "9999-12-31T23:00:00-05:00"}},
        "trace.end: 9999-12-31T23:00:00-05:00 is out of range in UTC",
    ),
    (
        "exclude-before-year-1-in-utc",
        {
            "trace": {
                "exclude": [{"start": "0001-01-01T00:00:00+01:00", "end": "2024-01-01T01:00:00Z"}]
            }
        },
        "trace.exclude[0].start: 0001-01-01T00:00:00+01:00 is out of range in UTC",
    ),
    ("max-replicas-over-int32", {"maxReplicas": 2**31}, "maxReplicas: must be <= 2147483647"),
    ("max-gap-zero", {"trace": {"maxGapSeconds": 0}}, "trace.maxGapSeconds: must be > 0"),
    (
        "observe-for-no-metric",
        {"observe": {"utilisation": "load"}},
        "observe.utilisation: no policy has a metric named 'utilisation' (metrics: utilization)",
    ),
    (
        "forecast-of-a-fraction",
        {
            "policies": [
                policy_doc(
                    metrics=[
                        {
                            "name": "ahead",
                            "source": {"prometheus": {"serverAddress": "http://p", "query": "q"}},
                            "target": {"type": "AverageValue", "averageValue": 0.5},
                            "offsetSeconds": 84600,
                        }
                    ]
                )
            ],
            "observe": {"ahead": "utilization"},
        },
        "web: spec.metrics[0]: reads 'utilization' (observe.ahead) with offsetSeconds; a metric "
        "read from another time must be a total",
    ),
]


@pytest.mark.parametrize(("case", "override", "message"), CASES, ids=[c[0] for c in CASES])
def test_invalid_scenarios_name_the_field(
    tmp_path: Path, case: str, override: dict[str, Any], message: str
) -> None:
    path = write_scenario(tmp_path, **override)
    with pytest.raises(SpecError) as err:
        load_scenario(path)
    text = "; ".join(f"{p}: {m}" for p, m in err.value.problems)
    assert message in text


def test_inline_policy_with_a_bad_field_is_named(tmp_path: Path) -> None:
    bad = policy_doc()
    bad["spec"]["maxReplicas"] = 0
    path = write_scenario(tmp_path, policies=[bad])
    with pytest.raises(SpecError) as err:
        load_scenario(path)
    assert any(p.startswith("policies[0].spec.maxReplicas") for p, _ in err.value.problems)


def test_cli_prints_file_and_field_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path, backend={"capacityPerReplica": -2})
    assert simulate_command(path, None, None, None, None) == 1
    err = capsys.readouterr().err
    assert f"{path}: backend.capacityPerReplica: must be > 0" in err


def test_relative_paths_inline_policies_and_utilization_traces(tmp_path: Path) -> None:
    sub = tmp_path / "deep"
    sub.mkdir()
    path = write_scenario(
        sub,
        [50.0] * 20,
        policies=["policies/web.yaml", policy_doc("inline")],
        trace={"kind": "utilization", "recordedReplicas": 4, "scale": 0.01},
    )
    sc = load_scenario(path)
    assert [p.metadata.name for p in sc.policies] == ["web", "inline"]
    # 50 % of 4 replicas of capacity 1.0 -> 2.0 load/s
    assert sc.trace.values[0] == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("trace", "expected"),
    [
        ({"scale": 0.01}, 2.0),
        ({}, 2.0),
        ({"utilizationUnit": "fraction"}, 200.0),
        ({"utilizationUnit": "percent"}, 2.0),
    ],
    ids=["explicit-scale", "auto-percent", "forced-fraction", "forced-percent"],
)
def test_utilization_traces_in_percent(
    tmp_path: Path, trace: dict[str, Any], expected: float
) -> None:
    path = write_scenario(
        tmp_path, [50.0] * 20, trace={"kind": "utilization", "recordedReplicas": 4, **trace}
    )
    assert load_scenario(path).trace.values[0] == pytest.approx(expected)


def test_observe_is_inferred_from_the_source(tmp_path: Path) -> None:
    from gemini.simulate.runner import mapping_for

    pub = policy_doc("q")
    pub["spec"]["metrics"] = [
        {
            "name": "backlog",
            "source": {"pubsub": {"subscription": "projects/p/subscriptions/work"}},
            "target": {"type": "AverageValue", "averageValue": 100},
        },
        {
            "name": "age",
            "source": {
                "pubsub": {
                    "subscription": "projects/p/subscriptions/work",
                    "metric": "oldest_unacked_message_age",
                }
            },
            "target": {"type": "Value", "value": 60},
        },
    ]
    path = write_scenario(tmp_path, policies=[pub], backend={"kind": "queue"})
    sc = load_scenario(path)
    assert mapping_for(sc, sc.policies[0]) == {
        "backlog": "backlog",
        "age": "oldestUnackedAgeSeconds",
    }


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(SpecError, match="mapping"):
        load_scenario(p)


def test_a_binary_scenario_file_is_a_spec_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "s.yaml"
    p.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(SpecError, match="not UTF-8 text"):
        load_scenario(p)
    assert simulate_command(p, None, None, None, None) == 1
    assert (
        f"{p}: cannot read file: not UTF-8 text (byte 0xff at offset 0)" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            yaml.safe_dump(
                {
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": "web"},
                    "spec": {"minReplicas": 1, "maxReplicas": 5},
                }
            ),
            "no ScalingPolicy in",
        ),
        ("# nothing here yet\n", "no ScalingPolicy in"),
    ],
    ids=["an-hpa-manifest", "no-documents"],
)
def test_a_policy_file_without_a_scaling_policy_is_an_error(
    tmp_path: Path, text: str, message: str
) -> None:
    """Documents of other kinds are skipped (a Deployment beside its policy), but a file that
    holds no ScalingPolicy at all is a mistake: the scenario would run baselines only."""
    path = write_scenario(tmp_path)
    (tmp_path / "policies" / "web.yaml").write_text(text)
    with pytest.raises(SpecError) as err:
        load_scenario(path)
    assert err.value.problems[0][0] == "policies[0]"
    assert message in err.value.problems[0][1]


def test_a_key_given_twice_in_the_scenario_is_an_error(tmp_path: Path) -> None:
    path = write_scenario(tmp_path)
    text = path.read_text().replace("backend:\n", "backend:\n  initialReplicas: 7\n", 1)
    path.write_text(text)
    with pytest.raises(SpecError, match="duplicate key 'initialReplicas'"):
        load_scenario(path)


def test_dates_outside_1900_to_9000_are_refused_naming_the_trace(tmp_path: Path) -> None:
    path = write_scenario(tmp_path)
    (tmp_path / "trace.csv").write_text(
        "timestamp,value\n0001-01-01T00:00:00Z,1\n0001-01-01T00:01:00Z,2\n"
    )
    with pytest.raises(SpecError) as err:
        load_scenario(path)
    assert err.value.problems == [
        (
            "trace.file",
            "timestamp 0001-01-01T00:00:00+00:00: the simulator replays dates from 1900 to 9000 "
            "(trace.start / trace.end select a span)",
        )
    ]


def test_the_utilization_unit_is_read_from_the_whole_file_not_the_window(
    tmp_path: Path,
) -> None:
    """A CPU-percent trace whose chosen window is idle (values of 2 % or less) is still percent:
    the same file must not be read 100x differently depending on start/end."""
    values = [1.5] * 60 + [80.0] * 60
    path = write_scenario(
        tmp_path,
        values,
        trace={
            "kind": "utilization",
            "recordedReplicas": 10,
            "end": "2024-01-01T00:30:00Z",
        },
    )
    sc = load_scenario(path)
    # 1.5 % of 10 replicas of capacity 1.0
    assert sc.trace.values[0] == pytest.approx(0.15)


def test_a_long_trace_without_a_step_is_replayed_at_a_coarser_one(tmp_path: Path) -> None:
    """A 15 s step over a year of hourly data would be two million steps per run; without
    `stepSeconds` the replay takes the smallest multiple of 15 s within AUTO_MAX_STEPS, and
    says so. A shorter trace keeps 15 s; an explicit step is kept."""
    hourly = [1.0 + (i % 24) / 4 for i in range(24 * 365)]
    path = write_scenario(tmp_path)
    write_series(tmp_path / "trace.csv", hourly, step_s=3600.0)
    sc = load_scenario(path)
    span = len(hourly) * 3600  # to an interval past the last sample, as the grid
    assert sc.step == 45.0 and span / 30 > AUTO_MAX_STEPS >= span / 45
    assert len(sc.notes) == 1
    assert "the trace's 365 days at 15 s would be 2,102,400 steps" in sc.notes[0]
    assert "replaying at 45 s steps (set stepSeconds to choose)" in sc.notes[0]
    path.write_text(path.read_text() + "stepSeconds: 60\n")
    assert (load_scenario(path).step, load_scenario(path).notes) == (60.0, ())
    short = tmp_path / "short"
    short.mkdir()
    sc = load_scenario(write_scenario(short))
    assert (sc.step, sc.notes) == (15.0, ())


def test_a_scenario_that_starts_at_zero_replicas_still_scales(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """HPA (and the engine) leave a workload scaled to 0 by hand alone when minReplicas > 0.
    A scenario starting at 0 is not that: the policy and hpa-default start at one replica
    (they used to stay at 0 for the whole replay, silently), and the user is told."""
    import json

    path = write_scenario(tmp_path, backend={"initialReplicas": 0})
    out = tmp_path / "out.json"
    assert simulate_command(path, out, None, None, None) == 0
    err = capsys.readouterr().err
    assert (
        "note: backend.initialReplicas is 0: hpa-default and policies with minReplicas > 0" in err
    )
    runs = {r["name"]: r for r in json.loads(out.read_text())["results"]}
    for name in ("web", "hpa-default"):
        assert runs[name]["capacityHours"] > 0 and runs[name]["maxReplicas"] > 1
        assert runs[name]["sloViolationMinutes"] < 60


def test_the_automatic_step_stays_within_stepseconds_limit(tmp_path: Path) -> None:
    """150 years of daily data would take 4,740 s steps to stay within a million; the step is
    capped at the 3,600 s a scenario may set (1.3 million steps)."""
    path = write_scenario(tmp_path)
    write_series(tmp_path / "trace.csv", [1.0] * 365 * 150, step_s=86400.0)
    assert load_scenario(path).step == 3600.0


def test_steps_are_counted_like_the_grid_counts_them(tmp_path: Path) -> None:
    """Two samples 20,000 s apart cover 40,000 s on the grid (one median interval past the
    last): at 1 ms that is 40 million steps, refused (it was checked on the 20,000 s between)."""
    path = write_scenario(tmp_path, stepSeconds=0.001)
    write_series(tmp_path / "trace.csv", [1.0, 2.0], step_s=20_000.0)
    with pytest.raises(SpecError, match="40,000,000 steps"):
        load_scenario(path)


def test_dates_are_checked_on_the_selected_span_only(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, trace={"start": "2024-01-01T00:00:00Z"})
    rows = ["1899-12-31T00:00:00Z,1"] + [f"2024-01-01T00:{m:02d}:00Z,{m + 1}" for m in range(10)]
    (tmp_path / "trace.csv").write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    assert len(load_scenario(path).trace) == 10


def test_an_empty_exclude_window_is_harmless(tmp_path: Path) -> None:
    at = "2024-01-01T01:00:00Z"
    path = write_scenario(tmp_path, trace={"exclude": [{"start": at, "end": at}]})
    assert len(load_scenario(path).exclude) == 1


def test_observe_is_only_checked_against_policies_that_loaded(tmp_path: Path) -> None:
    """A broken policy file gives its own error, not also a misleading one about `observe`; a
    scenario with baselines only ignores `observe`."""
    path = write_scenario(
        tmp_path, policies=["policies/missing.yaml"], observe={"utilization": "load"}
    )
    with pytest.raises(SpecError) as err:
        load_scenario(path)
    assert [p for p, _ in err.value.problems] == ["policies[0]"]
    path = write_scenario(tmp_path, policies=[], observe={"utilization": "load"})
    assert load_scenario(path).policies == ()


def test_invalid_yaml_is_one_line_with_its_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path)
    path.write_text(path.read_text() + "name: again\n")
    assert simulate_command(path, None, None, None, None) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(f"{path}: invalid YAML at line ") and "duplicate key 'name'" in err


def test_a_trace_with_no_scored_step_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    window = {"start": "2023-12-31T00:00:00Z", "end": "2024-01-02T00:00:00Z"}
    path = write_scenario(tmp_path, trace={"exclude": [window]})
    assert simulate_command(path, None, None, None, None) == 0
    assert "warning: every step is inside a long gap or an exclude window" in (
        capsys.readouterr().err
    )


def _mixed_resolution(tmp_path: Path, **trace: Any) -> Path:
    """A day at 1-minute samples, then a day at 5-minute samples (a recording whose resolution
    changed): every 5-minute interval is more than three median intervals long."""
    rows = ["timestamp,value"]
    t, end = T0, T0 + timedelta(days=1)
    while t < end:
        rows.append(f"{t.isoformat()},{2.0 + (t.hour % 6)}")
        t += timedelta(minutes=1)
    end += timedelta(days=1)
    while t < end:
        rows.append(f"{t.isoformat()},{2.0 + (t.hour % 6)}")
        t += timedelta(minutes=5)
    path = write_scenario(tmp_path, trace=trace)
    (tmp_path / "trace.csv").write_text("\n".join(rows) + "\n")
    return path


def test_long_gaps_are_noted_with_what_they_leave_unscored(tmp_path: Path) -> None:
    sc = load_scenario(_mixed_resolution(tmp_path))
    [note] = [n for n in sc.notes if "gaps between samples" in n]
    assert "three median sample intervals (180 s; trace.maxGapSeconds sets the limit)" in note
    assert "287 gaps" in note and "23.9 h, 49.9% of the trace" in note
    grid = grid_of(sc)
    assert 0.45 < sum(grid.masked) / len(grid) < 0.55


def test_max_gap_seconds_sets_which_gaps_are_scored(tmp_path: Path) -> None:
    sc = load_scenario(_mixed_resolution(tmp_path, maxGapSeconds=600))
    assert not any("gaps between samples" in n for n in sc.notes)
    assert not any(grid_of(sc).masked)
    # `.inf`: every gap is scored, however long
    sc = load_scenario(_mixed_resolution(tmp_path, maxGapSeconds=math.inf))
    assert not any(grid_of(sc).masked)
    # and a limit below the sampling interval masks the day at 5 minutes, not the one at 1
    sc = load_scenario(_mixed_resolution(tmp_path, maxGapSeconds=120))
    assert "trace.maxGapSeconds 120" in " ".join(sc.notes)
    masked = grid_of(sc).masked
    day, last = 86400 // 15, (2 * 86400 - 300) // 15  # the last sample's step
    assert not any(masked[:day]) and all(masked[day:last]) and not any(masked[last:])


def test_an_hpa_default_that_cannot_reach_the_peak_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A load of 1e10/s on replicas of 1/s needs more replicas than a manifest may ask for:
    the baseline (capped at the int32 maximum) violates, and says why, as a policy does."""
    path = write_scenario(tmp_path, [1e10] * 10)
    assert simulate_command(path, None, None, None, None) == 0
    err = capsys.readouterr().err
    assert "warning: policy web: spec.maxReplicas 40 is below" in err
    assert (
        "warning: baseline hpa-default: maxReplicas 2147483647 (the most a manifest allows) is "
        "below the 11111111100 the oracle needs at the peak" in err
    )
    path = write_scenario(tmp_path, [1e10] * 10, maxReplicas=500)
    assert simulate_command(path, None, None, None, None) == 0
    assert "hpa-default: maxReplicas 500 (the scenario's maxReplicas)" in capsys.readouterr().err


def test_an_age_slo_on_a_backend_without_a_queue_is_noted(tmp_path: Path) -> None:
    sc = load_scenario(write_scenario(tmp_path, slo={"maxAgeSeconds": 600}))
    assert "slo.maxAgeSeconds is ignored: only a queue backend has messages to age" in " ".join(
        sc.notes
    )
