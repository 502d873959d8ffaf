"""The ScalingPolicy models: contract names, descriptions, messages, and invariants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from gemini.errors import SpecError
from gemini.policy import crd, spec
from tests.policy.samples import base, put

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "deploy" / "examples").glob("*.yaml"))


def _models() -> dict[str, type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {}
    crd._all_models(spec.ScalingPolicy, seen)
    return seen


@pytest.mark.parametrize("model", list(_models().values()), ids=list(_models()))
def test_every_field_and_model_is_described(model: type[BaseModel]) -> None:
    assert (model.__doc__ or "").strip(), f"{model.__name__} has no docstring"
    undocumented = [n for n, f in model.model_fields.items() if not f.description]
    assert undocumented == []


def _paths(node: dict[str, Any], path: str = "") -> set[str]:
    out = {path} if path else set()
    for name, child in node.get("properties", {}).items():
        out |= _paths(child, f"{path}.{name}" if path else name)
    if "items" in node:
        out |= _paths(node["items"], f"{path}[]")
    return out


# The names CONTRACTS.md promises (HPA v2 names where the concept is the same).
CONTRACT_PATHS = [
    "spec.minReplicas",
    "spec.maxReplicas",
    "spec.mode",
    "spec.target.kubernetes.apiVersion",
    "spec.target.kubernetes.kind",
    "spec.target.kubernetes.name",
    "spec.target.bigtable.project",
    "spec.target.bigtable.instance",
    "spec.target.bigtable.cluster",
    "spec.metrics[].name",
    "spec.metrics[].target.type",
    "spec.metrics[].target.value",
    "spec.metrics[].target.averageValue",
    "spec.metrics[].target.averageUtilization",
    "spec.metrics[].source.cloudMonitoring.project",
    "spec.metrics[].source.cloudMonitoring.filter",
    "spec.metrics[].source.pubsub.subscription",
    "spec.metrics[].source.pubsub.metric",
    "spec.metrics[].source.bigtable.metric",
    "spec.metrics[].source.prometheus.serverAddress",
    "spec.metrics[].source.prometheus.query",
    "spec.metrics[].source.kubernetes.name",
    "spec.behavior.scaleUp.stabilizationWindowSeconds",
    "spec.behavior.scaleDown.selectPolicy",
    "spec.behavior.scaleDown.tolerance",
    "spec.behavior.scaleDown.policies[].type",
    "spec.behavior.scaleDown.policies[].value",
    "spec.behavior.scaleDown.policies[].periodSeconds",
]


def test_contract_field_names_are_stable() -> None:
    paths = _paths(crd.schema())
    assert [p for p in CONTRACT_PATHS if p not in paths] == []


@pytest.mark.parametrize(
    ("path", "enum"),
    [
        ("spec.mode", ["Active", "Shadow", "Paused"]),
        ("spec.metrics[].target.type", ["Value", "AverageValue", "Utilization"]),
        (
            "spec.metrics[].source.pubsub.metric",
            ["num_undelivered_messages", "oldest_unacked_message_age"],
        ),
        (
            "spec.metrics[].source.bigtable.metric",
            ["cpu_load", "cpu_load_hottest_node", "storage_utilization"],
        ),
        ("spec.behavior.scaleUp.policies[].type", ["Pods", "Percent"]),
        ("spec.behavior.scaleUp.selectPolicy", ["Max", "Min", "Disabled"]),
    ],
    ids=["mode", "target-type", "pubsub-metric", "bigtable-metric", "policy-type", "select"],
)
def test_contract_enums(path: str, enum: list[str]) -> None:
    node: dict[str, Any] = crd.schema()
    for part in path.replace("[]", ".[]").split("."):
        node = node["items"] if part == "[]" else node["properties"][part]
    assert node["enum"] == enum


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (3, 3.0),
        (0.25, 0.25),
        ("500m", 0.5),
        ("1k", 1000.0),
        ("2Gi", 2.0 * 2**30),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        (" 7 ", 7.0),
    ],
    ids=["int", "float", "milli", "kilo", "gibi", "decimal-string", "exponent", "spaces"],
)
def test_quantity(raw: object, value: float) -> None:
    assert spec.parse_quantity(raw) == pytest.approx(value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (True, "must be a number"),
        ("10 msgs", "not a number or quantity"),
        ("5Q", "not a number or quantity"),
        ("inf", "not a number or quantity"),
        ("1.5.2", "not a number or quantity"),
        (float("nan"), "must be finite"),
        ([1], "must be a number"),
    ],
    ids=["bool", "words", "unknown-suffix", "inf-string", "two-dots", "nan", "list"],
)
def test_bad_quantity(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec.parse_quantity(raw)


def test_quantity_pattern_agrees_with_parser_on_valid_strings() -> None:
    import re

    for text in ["500m", "1k", "2Gi", "1.5", "1e3", "0.25", ".5", "12"]:
        assert re.search(spec.QUANTITY_PATTERN, text), text
        spec.parse_quantity(text)
    for text in ["-1", "abc", "1 k", ""]:
        assert re.search(spec.QUANTITY_PATTERN, text) is None, text


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([1, 2], "a manifest must be a mapping (got a list)"),
        ("text", "a manifest must be a mapping (got a string)"),
        (7, "a manifest must be a mapping (got a number)"),
    ],
    ids=["list", "string", "number"],
)
def test_non_mapping(doc: object, message: str) -> None:
    with pytest.raises(SpecError) as err:
        spec.parse_policy(doc)
    assert err.value.problems == [("", message)]


def test_every_problem_is_reported_at_once() -> None:
    doc = put("spec.minReplicas", 20, put("spec.metrics", base()["spec"]["metrics"] * 2))
    with pytest.raises(SpecError) as err:
        spec.parse_policy(doc)
    assert [p for p, _ in err.value.problems] == ["spec.minReplicas", "spec.metrics[1].name"]


def test_defaults_follow_hpa() -> None:
    policy = spec.parse_policy(base())
    assert policy.spec.mode is spec.Mode.ACTIVE
    assert policy.spec.interval_seconds == 15
    metric = policy.spec.metrics[0]
    assert metric.fallback.policy is spec.FallbackPolicy.HOLD
    assert metric.source.pubsub is not None
    assert metric.source.pubsub.metric is spec.PubsubMetric.NUM_UNDELIVERED_MESSAGES
    assert spec.DEFAULT_TOLERANCE == 0.1 and spec.DEFAULT_SCALE_DOWN_WINDOW_SECONDS == 300


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_round_trip_through_model_dump(path: Path) -> None:
    """A parsed policy written back out (as the tuner does) parses to the same policy."""
    for doc in yaml.safe_load_all(path.read_text()):
        policy = spec.parse_policy(doc)
        dumped = policy.model_dump(mode="json", by_alias=True, exclude_none=True)
        assert spec.parse_policy(dumped) == policy


# Any JSON-like value at any place of a valid manifest: parse_policy returns a policy or raises
# SpecError whose paths are camelCase manifest paths, never anything else.
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_places = [
    "spec",
    "spec.target",
    "spec.target.kubernetes",
    "spec.target.kubernetes.name",
    "spec.minReplicas",
    "spec.maxReplicas",
    "spec.metrics",
    "spec.metrics[0]",
    "spec.metrics[0].source",
    "spec.metrics[0].source.pubsub.subscription",
    "spec.metrics[0].target",
    "spec.metrics[0].target.type",
    "spec.metrics[0].target.averageValue",
    "spec.metrics[0].stepScaling",
    "spec.metrics[0].fallback",
    "spec.behavior",
    "spec.behavior.scaleDown.policies",
    "spec.behavior.scaleDown.policies[0].periodSeconds",
    "spec.schedules[0].cron",
    "spec.schedules[0].timeZone",
    "spec.schedules[0]",
    "spec.mode",
    "metadata",
    "metadata.name",
    "kind",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(place=st.sampled_from(_places), value=_json)
def test_any_value_anywhere_gives_a_policy_or_spec_error(place: str, value: object) -> None:
    doc = put(place, value)
    try:
        spec.parse_policy(doc)
    except SpecError as exc:
        assert exc.problems
        for path, message in exc.problems:
            assert message
            assert path.split(".")[0].split("[")[0] in {"apiVersion", "kind", "metadata", "spec"}


@settings(max_examples=200, deadline=None)
@given(cron=st.text(alphabet="0123456789*/,-LW#? abcdefghijklmnopqrstuvwxyz", max_size=24))
def test_any_cron_text_gives_a_schedule_or_spec_error(cron: str) -> None:
    try:
        spec.parse_policy(put("spec.schedules[0].cron", cron))
    except SpecError as exc:
        assert [p for p, _ in exc.problems] == ["spec.schedules[0].cron"]


@settings(max_examples=200, deadline=None)
@given(tz=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ/_.-+ 0123456789", max_size=24))
def test_any_time_zone_text_gives_a_schedule_or_spec_error(tz: str) -> None:
    try:
        spec.parse_policy(put("spec.schedules[0].timeZone", tz))
    except SpecError as exc:
        assert [p for p, _ in exc.problems] == ["spec.schedules[0].timeZone"]


@settings(max_examples=300, deadline=None)
@given(text=st.from_regex(spec.QUANTITY_PATTERN, fullmatch=True))
def test_every_quantity_the_crd_admits_parses(text: str) -> None:
    """What the API server lets through as a quantity string, validate can read (the only
    disagreement: numbers beyond a float's range, such as 1E310)."""
    try:
        value = spec.parse_quantity(text)
    except ValueError as exc:
        assert str(exc) == "must be finite"
    else:
        assert value >= 0


@pytest.mark.parametrize(
    "cron", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *", "15 3 30,31 feb *"]
)
def test_a_cron_on_a_day_no_month_has_is_refused(cron: str) -> None:
    """It would never fire (and searching for its next start scans to the year 9999)."""
    with pytest.raises(SpecError) as err:
        spec.parse_policy(put("spec.schedules[0].cron", cron))
    assert err.value.problems[0][0] == "spec.schedules[0].cron"
    assert "never fires" in err.value.problems[0][1]


@pytest.mark.parametrize("cron", ["0 0 29 2 *", "0 0 31 * *", "0 0 30 1-3 *"])
def test_a_cron_that_fires_somewhere_in_the_calendar_is_kept(cron: str) -> None:
    policy = spec.parse_policy(put("spec.schedules[0].cron", cron))
    assert policy.spec.schedules[0].cron == cron


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.metrics[0].activationValue", float("nan")),
        ("spec.metrics[0].activationValue", float("-inf")),
        ("spec.behavior.scaleDown.tolerance", float("nan")),
    ],
)
def test_nan_and_infinity_are_refused_in_every_number(path: str, value: float) -> None:
    """Found by an adversarial run: a NaN activationValue passed validation and kept a loaded
    workload at zero (no value is above NaN)."""
    with pytest.raises(SpecError) as err:
        spec.parse_policy(put(path, value))
    [(where, message)] = err.value.problems
    assert where == path and "finite" in message


def test_nan_step_bounds_are_refused() -> None:
    doc = base()
    m = doc["spec"]["metrics"][0]
    del m["target"]
    m["stepScaling"] = {"steps": [{"lowerBound": float("nan"), "adjustment": 5}]}
    with pytest.raises(SpecError) as err:
        spec.parse_policy(doc)
    assert err.value.problems[0][0] == "spec.metrics[0].stepScaling.steps[0].lowerBound"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("spec.maxReplicas", "10", "must be a whole number, not a string (got '10')"),
        ("spec.metrics[0].activationValue", "5", "must be a number, not a string (got '5')"),
        ("spec.behavior.scaleDown.policies[0].value", "50", "must be a whole number, not a"),
    ],
)
def test_a_string_for_a_number_is_refused_as_the_api_server_would(
    path: str, value: str, message: str
) -> None:
    """Found by an adversarial run: pydantic read "10" as 10, so `gemini validate` passed a
    manifest that the CRD's `type: integer` makes the API server refuse."""
    with pytest.raises(SpecError) as err:
        spec.parse_policy(put(path, value))
    [(where, got)] = err.value.problems
    assert where == path and got.startswith(message)


def test_quantities_are_still_strings() -> None:
    policy = spec.parse_policy(put("spec.metrics[0].target.averageValue", "1.5k"))
    target = policy.spec.metrics[0].target
    assert target is not None and target.amount == 1500.0
