"""Scenario validation: clear errors naming the field; paths relative to the scenario file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gemini.errors import SpecError
from gemini.simulate.commands import simulate_command
from gemini.simulate.scenario import load_scenario
from tests.simulate.helpers import policy_doc, write_scenario

CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "capacity-zero",
        {"backend": {"capacityPerReplica": 0}},
        "backend.capacityPerReplica: must be > 0",
    ),
    ("bad-kind", {"backend": {"kind": "lambda"}}, "backend.kind"),
    ("util-needs-replicas", {"trace": {"kind": "utilization"}}, "recordedReplicas is required"),
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
