"""`gemini validate`: exit codes and the exact `FILE: NAME: FIELD: MESSAGE` lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gemini.cli import app
from tests.policy.samples import BIGTABLE_CPU, BIGTABLE_TARGET, STEPS, base, drop, put

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "deploy" / "examples").glob("*.yaml"))


def run(*paths: Path) -> tuple[int, list[str], str]:
    result = CliRunner().invoke(app, ["validate", *map(str, paths)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr.splitlines(), result.stdout


def dump(*docs: object) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def _m(path: str) -> str:
    return f"spec.metrics[0].{path}"


def _two_metrics() -> dict[str, object]:
    doc = base()
    doc["spec"]["metrics"].append(dict(doc["spec"]["metrics"][0]))
    return doc


def _with_steps(steps: list[dict[str, object]]) -> dict[str, object]:
    return put(_m("stepScaling"), {"steps": steps}, drop(_m("target")))


# (id, file text, expected stderr lines after "FILE: ")
BAD = [
    (
        "typo-spec-level",
        dump(put("spec.maxReplica", 5)),
        ["worker: spec.maxReplica: unknown field; did you mean maxReplicas?"],
    ),
    (
        "typo-metric-level",
        dump(put(_m("targt"), {"type": "Value", "value": 1})),
        ["worker: spec.metrics[0].targt: unknown field; did you mean target?"],
    ),
    (
        "typo-rate-policy-level",
        dump(put("spec.behavior.scaleDown.policies[0].periodSecond", 60)),
        [
            "worker: spec.behavior.scaleDown.policies[0].periodSecond: "
            "unknown field; did you mean periodSeconds?"
        ],
    ),
    (
        "typo-source-level",
        dump(put(_m("source.pubsub.metricc"), "num_undelivered_messages")),
        ["worker: spec.metrics[0].source.pubsub.metricc: unknown field; did you mean metric?"],
    ),
    (
        "unknown-field-no-close-match",
        dump(put("spec.behavior.scaleDown.zzz", 1)),
        [
            "worker: spec.behavior.scaleDown.zzz: unknown field; known fields here: "
            "cooldownSeconds, policies, selectPolicy, stabilizationWindowSeconds, tolerance"
        ],
    ),
    (
        "typo-in-metadata",
        dump(put("metadata.namespce", "jobs")),
        ["worker: metadata.namespce: unknown field; did you mean namespace?"],
    ),
    (
        "duplicate-metric-names",
        dump(_two_metrics()),
        ["worker: spec.metrics[1].name: duplicate metric name 'backlog' (also metrics[0])"],
    ),
    (
        "min-above-max",
        dump(put("spec.minReplicas", 12)),
        ["worker: spec.minReplicas: minReplicas 12 exceeds maxReplicas 10"],
    ),
    (
        "metric-two-sources",
        dump(put(_m("source.bigtable"), BIGTABLE_CPU["bigtable"])),
        [
            "worker: spec.metrics[0].source: source must set exactly one of cloudMonitoring, "
            "pubsub, bigtable, prometheus, kubernetes, recorded (got pubsub, bigtable)"
        ],
    ),
    (
        "target-both-kinds",
        dump(put("spec.target.bigtable", BIGTABLE_TARGET["bigtable"])),
        [
            "worker: spec.target: target must set exactly one of kubernetes, bigtable "
            "(got kubernetes, bigtable)"
        ],
    ),
    (
        "metric-target-and-steps",
        dump(put(_m("stepScaling"), STEPS)),
        [
            "worker: spec.metrics[0]: metric must set exactly one of target, stepScaling "
            "(got target, stepScaling)"
        ],
    ),
    (
        "subscription-not-a-path",
        dump(put(_m("source.pubsub.subscription"), "orders")),
        [
            "worker: spec.metrics[0].source.pubsub.subscription: must be a full path "
            "projects/PROJECT/subscriptions/SUBSCRIPTION, got 'orders'"
        ],
    ),
    (
        "cron-six-fields",
        dump(put("spec.schedules[0].cron", "0 30 8 * * mon-fri")),
        [
            "worker: spec.schedules[0].cron: cron must have 5 fields (minute hour day month "
            "day-of-week), got 6: '0 30 8 * * mon-fri'"
        ],
    ),
    (
        "cron-hour-25",
        dump(put("spec.schedules[0].cron", "0 25 * * *")),
        [
            "worker: spec.schedules[0].cron: bad cron expression '0 25 * * *': Error validating "
            "expression '25': the last value (25) is higher than the maximum value (23)"
        ],
    ),
    (
        "unknown-time-zone",
        dump(put("spec.schedules[0].timeZone", "Asia/Tokio")),
        [
            "worker: spec.schedules[0].timeZone: unknown time zone 'Asia/Tokio' "
            "(use an IANA name like Europe/Paris)"
        ],
    ),
    (
        "time-zone-is-a-directory",
        dump(put("spec.schedules[0].timeZone", "America")),
        [
            "worker: spec.schedules[0].timeZone: unknown time zone 'America' "
            "(use an IANA name like Europe/Paris)"
        ],
    ),
    (
        "period-0",
        dump(put("spec.behavior.scaleDown.policies[0].periodSeconds", 0)),
        [
            "worker: spec.behavior.scaleDown.policies[0].periodSeconds: "
            "must be greater than 0 (got 0)"
        ],
    ),
    (
        "period-1801",
        dump(put("spec.behavior.scaleDown.policies[0].periodSeconds", 1801)),
        [
            "worker: spec.behavior.scaleDown.policies[0].periodSeconds: "
            "must be less than or equal to 1800 (got 1801)"
        ],
    ),
    (
        "target-type-needs-its-field",
        dump(put(_m("target"), {"type": "AverageValue", "value": 100})),
        [
            "worker: spec.metrics[0].target.averageValue: type AverageValue needs averageValue (got value)"
        ],
    ),
    (
        "target-type-extra-field",
        dump(put(_m("target"), {"type": "Value", "value": 5, "averageUtilization": 50})),
        [
            "worker: spec.metrics[0].target.averageUtilization: type Value takes only value, "
            "not averageUtilization"
        ],
    ),
    (
        "utilization-on-a-backlog",
        dump(put(_m("target"), {"type": "Utilization", "averageUtilization": 70})),
        [
            "worker: spec.metrics[0].target.type: Utilization does not fit: a Pub/Sub backlog "
            "is a total number of messages, not a fraction of capacity: use AverageValue "
            "(messages per replica) or Value"
        ],
    ),
    (
        "target-type-lowercase",
        dump(put(_m("target"), {"type": "averageValue", "averageValue": 5})),
        [
            "worker: spec.metrics[0].target.type: must be 'Value', 'AverageValue' or "
            "'Utilization' (got 'averageValue')"
        ],
    ),
    (
        "bad-quantity",
        dump(put(_m("target.averageValue"), "10 messages")),
        ["worker: spec.metrics[0].target.averageValue: not a number or quantity: '10 messages'"],
    ),
    (
        "step-ranges-overlap",
        dump(
            _with_steps([{"upperBound": 10, "adjustment": -1}, {"lowerBound": 5, "adjustment": 1}])
        ),
        ["worker: spec.metrics[0].stepScaling: step ranges overlap"],
    ),
    (
        "follows-itself",
        dump(put(_m("source"), {"kubernetes": {"name": "worker"}})),
        [
            "worker: spec.metrics[0].source.kubernetes: reads the replicas of the policy's own "
            "target Deployment/worker (a feedback loop)"
        ],
    ),
    (
        "missing-max-and-wrong-kind",
        dump(put("kind", "ScalingPolicies", drop("spec.maxReplicas"))),
        [
            "worker: kind: must be 'ScalingPolicy' (got 'ScalingPolicies')",
            "worker: spec.maxReplicas: required field is missing",
        ],
    ),
    (
        "bigtable-zero-nodes",
        dump(
            put(
                _m("source"),
                BIGTABLE_CPU,
                put(
                    _m("target"),
                    {"type": "Utilization", "averageUtilization": 60},
                    put("spec.minReplicas", 0, put("spec.target", BIGTABLE_TARGET)),
                ),
            )
        ),
        ["worker: spec.minReplicas: a Bigtable cluster has at least 1 node"],
    ),
    (
        "yaml-syntax-error",
        "apiVersion: autoscaling.gemini.dev/v1alpha1\nspec: {maxReplicas: [1, 2}\n",
        ["<file>: line 2: invalid YAML: expected ',' or ']', but got '}'"],
    ),
    (
        "yaml-duplicate-key",
        "metadata:\n  name: a\nspec:\n  maxReplicas: 3\n  maxReplicas: 4\n",
        ["<file>: line 5: invalid YAML: duplicate key 'maxReplicas' (first on line 4)"],
    ),
    (
        "yaml-duplicate-key-on-one-line",
        "metadata:\n  name: a\nspec: {minReplicas: 1, maxReplicas: 3, maxReplicas: 4}\n",
        ["<file>: line 3: invalid YAML: duplicate key 'maxReplicas' (first on line 3)"],
    ),
    ("empty-file", "", ["<file>: (root): no ScalingPolicy document in file"]),
    (
        "only-comments",
        "# nothing here\n---\n",
        ["<file>: (root): no ScalingPolicy document in file"],
    ),
    (
        "non-mapping-documents",
        dump(base()) + "---\n- a\n- list\n---\njust text\n",
        [
            "<document 2>: (root): a manifest must be a mapping (got a list)",
            "<document 3>: (root): a manifest must be a mapping (got a string)",
        ],
    ),
    (
        "offset-on-a-utilization",
        dump(
            put(
                _m("offsetSeconds"),
                86100,
                put(_m("target"), {"type": "Utilization", "averageUtilization": 60}),
            )
        ),
        [
            "worker: spec.metrics[0].offsetSeconds: needs an AverageValue target (a utilization "
            "or value read from another time is relative to that time's replicas)"
        ],
    ),
    (
        "offset-on-the-kubernetes-source",
        dump(
            put(
                _m("offsetSeconds"),
                3600,
                put(_m("source"), {"kubernetes": {"name": "front"}}),
            )
        ),
        [
            "worker: spec.metrics[0].offsetSeconds: the kubernetes source reads only the "
            "current replica count"
        ],
    ),
    (
        "offset-on-the-bigtable-source",
        dump(put(_m("offsetSeconds"), 3600, put(_m("source"), BIGTABLE_CPU))),
        [
            "worker: spec.metrics[0].offsetSeconds: the bigtable source reads fractions of the "
            "nodes there were then; read a total (e.g. a request rate) for a forecast"
        ],
    ),
    (
        "offset-over-a-week",
        dump(put(_m("offsetSeconds"), 8 * 86400)),
        [
            "worker: spec.metrics[0].offsetSeconds: must be less than or equal to 604800 (got 691200)"
        ],
    ),
    (
        "invalid-policy-name",
        dump(put("metadata.name", "Worker_1")),
        [
            "Worker_1: metadata.name: must match pattern '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' "
            "(got 'Worker_1')"
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_manifest(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    code, lines, _ = run(path)
    assert code == 1
    assert lines == [f"{path}: {line}" for line in expected]


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("metadata: {name: caf\xe9}\n".encode("latin-1"))
    code, lines, _ = run(path)
    assert (code, lines) == (
        1,
        [f"{path}: <file>: (root): cannot read file: not UTF-8 text (byte 0xe9 at offset 20)"],
    )


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    code, lines, _ = run(path)
    assert (code, lines) == (
        1,
        [f"{path}: <file>: (root): cannot read file: No such file or directory"],
    )


def test_good_multi_document_file_exits_0(tmp_path: Path) -> None:
    second = put("metadata.name", "worker-shadow", put("spec.mode", "Shadow"))
    bigtable = put("metadata.name", "store", put("spec.target", BIGTABLE_TARGET))
    put(_m("source"), BIGTABLE_CPU, bigtable)
    put(_m("target"), {"type": "Utilization", "averageUtilization": 65}, bigtable)
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "worker"}}
    path = tmp_path / "stack.yaml"
    path.write_text("# the worker and its policies\n" + dump(deployment, base(), second, bigtable))
    code, lines, out = run(path)
    assert (code, lines) == (0, [])
    assert "valid" in out


def test_one_bad_document_does_not_hide_the_others(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(dump(base()))
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        dump(put("metadata.name", "a", put("spec.mode", "Fast")), put("spec.minReplicas", -1))
    )
    code, lines, _ = run(good, bad)
    assert code == 1
    assert lines == [
        f"{bad}: a: spec.mode: must be 'Active', 'Shadow' or 'Paused' (got 'Fast')",
        f"{bad}: worker: spec.minReplicas: must be greater than or equal to 0 (got -1)",
    ]


def test_same_policy_twice_and_two_active_policies_on_one_target(tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    first.write_text(dump(base()))
    second = tmp_path / "b.yaml"
    rival = put("metadata.name", "rival")
    shadow = put("metadata.name", "twin", put("spec.mode", "Shadow"))
    second.write_text(dump(base(), rival, shadow))
    code, lines, _ = run(first, second)
    # Each manifest is valid on its own: these are warnings, and the exit code stays 0.
    assert code == 0
    assert lines == [
        f"warning: {second}: worker: metadata.name: ScalingPolicy jobs/worker is defined twice "
        f"(also in {first})",
        f"warning: {second}: rival: spec.target: Deployment/worker is also scaled by Active "
        f"policy jobs/worker ({first}); make one of them Shadow or Paused",
    ]


def test_averagevalue_on_bigtable_cpu_is_a_warning(tmp_path: Path) -> None:
    """Evaluable (KEDA's default metricType is AverageValue), but probably not meant: exit 0."""
    path = tmp_path / "bt.yaml"
    path.write_text(dump(put(_m("source"), BIGTABLE_CPU, put("spec.target", BIGTABLE_TARGET))))
    code, lines, _ = run(path)
    assert code == 0
    assert lines == [
        f"warning: {path}: worker: spec.metrics[0].target.type: AverageValue does not fit: "
        "Bigtable CPU load and storage utilization are already per-node fractions: Utilization "
        "(averageUtilization in percent) or Value track them; AverageValue reads them as a "
        "cluster total and asks for ceil(value / averageValue) nodes whatever the current count"
    ]


def test_short_subscription_id_is_a_warning(tmp_path: Path) -> None:
    """A well-formed path whose ID breaks Google's naming rule (a test fixture's "ab")."""
    path = tmp_path / "s.yaml"
    path.write_text(dump(put(_m("source.pubsub.subscription"), "projects/p1/subscriptions/ab")))
    code, lines, _ = run(path)
    assert code == 0
    assert lines == [
        f"warning: {path}: worker: spec.metrics[0].source.pubsub.subscription: Pub/Sub "
        "subscription IDs start with a letter and are 3-255 letters, digits or - _ . ~ + % "
        "(got 'ab')"
    ]


def test_decimal_targets_are_valid(tmp_path: Path) -> None:
    """`value: 0.7` (Bigtable CPU) and `averageValue: 0.5` are what users write; the CRD keeps
    quantities as numbers or quantity strings, so both are valid."""
    path = tmp_path / "d.yaml"
    path.write_text(dump(put(_m("target.averageValue"), 0.5)))
    assert run(path)[:2] == (0, [])


def test_directory_means_its_yaml_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(dump(base()))
    (tmp_path / "b.yml").write_text(dump(put("spec.maxReplicas", 0, put("metadata.name", "b"))))
    (tmp_path / "notes.txt").write_text("not yaml: [")
    code, lines, _ = run(tmp_path)
    assert (code, lines) == (
        1,
        [f"{tmp_path / 'b.yml'}: b: spec.maxReplicas: must be greater than or equal to 1 (got 0)"],
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    code, lines, _ = run(empty)
    assert (code, lines) == (
        1,
        [f"{empty}: <file>: (root): no .yaml or .yml files in this directory"],
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_is_valid(path: Path) -> None:
    code, lines, _ = run(path)
    assert (code, lines) == (0, [])


def test_all_examples_together_are_valid() -> None:
    """Cross-file rules hold too: the Shadow twin does not conflict with its Active policy."""
    code, lines, _ = run(*EXAMPLES)
    assert (code, lines) == (0, [])


def test_as_a_real_process_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("- [\n")
    proc = subprocess.run(
        [sys.executable, "-m", "gemini", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"{path}: <file>: line 2: invalid YAML")


def test_no_arguments_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 2
