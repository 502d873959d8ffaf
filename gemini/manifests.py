"""Loading ScalingPolicy manifests from YAML files, and the `validate` / `evaluate` commands.

The shell around `gemini.policy.spec.parse_policy`: file reading, multi-document YAML, and
error lines `FILE: NAME: FIELD: MESSAGE`.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import yaml

from gemini.clock import SystemClock, parse_iso
from gemini.errors import SpecError
from gemini.policy import engine
from gemini.policy.decision import Capacity, Decision
from gemini.policy.spec import (
    API_GROUP,
    API_VERSION,
    KIND,
    Mode,
    ScalingPolicy,
    TargetType,
    parse_policy,
    parse_quantity,
    policy_name,
    policy_warnings,
)
from gemini.policy.state import PolicyState
from gemini.series import Observation


@dataclass(frozen=True, slots=True)
class Loaded:
    file: Path
    index: int
    doc: Any


def _no_duplicate_keys(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    """Construct a mapping, rejecting a key written twice (YAML keeps the last one silently,
    so `maxReplicas` given twice would hide a mistake). Merge keys (`<<`) may be overridden."""
    seen: dict[Any, tuple[int, int]] = {}  # key -> (position in the mapping, line)
    for pos, (key_node, _) in enumerate(node.value):
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, (pos, key_node.start_mark.line))
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
        if first[0] != pos:  # (lines alone would miss `{a: 1, a: 2}` on one line)
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {first[1] + 1})",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


def _strict(base: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    loader = cast(type[yaml.SafeLoader], type(f"Strict{base.__name__}", (base,), {}))
    loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)
    return loader


# LibYAML's parser when PyYAML has it (about 30x faster on big files); on an error the
# pure-Python parser reads the text again for its more precise message.
_FAST_LOADER = _strict(getattr(yaml, "CSafeLoader", yaml.SafeLoader))
_PRECISE_LOADER = _strict(yaml.SafeLoader)


def _load_all(text: str) -> list[Any]:
    try:
        return list(yaml.load_all(text, Loader=_FAST_LOADER))
    except yaml.YAMLError:
        return list(yaml.load_all(text, Loader=_PRECISE_LOADER))


def load_yaml(text: str) -> Any:
    """One YAML document, like `yaml.safe_load`, but a key given twice is an error
    (yaml.YAMLError, as for any invalid YAML)."""
    try:
        return yaml.load(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        return yaml.load(text, Loader=_PRECISE_LOADER)


def documents(path: Path) -> Iterator[Loaded]:
    """Every non-empty YAML document in `path` (the items of a v1 List count as documents).
    Raises SpecError on an unreadable file or invalid YAML (including a key given twice in one
    mapping)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SpecError(f"cannot read: {reason}", [("", f"cannot read file: {reason}")]) from None
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        raise SpecError(f"cannot read: {reason}", [("", f"cannot read file: {reason}")]) from None
    try:
        docs = _load_all(text)
    except (ValueError, RecursionError) as exc:
        # e.g. an integer of more than 4300 digits, or nesting deeper than Python's stack
        problem = str(exc).split(";")[0] if isinstance(exc, ValueError) else "nested too deeply"
        raise SpecError(
            f"invalid YAML: {problem}", [("document", f"invalid YAML: {problem}")]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "document"
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            f"invalid YAML at {where}: {problem}", [(where, f"invalid YAML: {problem}")]
        ) from None
    for i, doc in enumerate(docs):
        if _is_list(doc):
            # `kubectl get ... -o yaml` writes a v1 List: its items are the documents
            yield from (Loaded(path, i, item) for item in doc["items"] if item is not None)
        elif doc is not None:
            yield Loaded(path, i, doc)


def _is_list(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and doc.get("kind") == "List"
        and doc.get("apiVersion") == "v1"
        and isinstance(doc.get("items"), list)
    )


def load_policies(path: Path) -> list[ScalingPolicy]:
    """All ScalingPolicy documents in `path`; SpecError (with every problem) if any is invalid.
    Documents of other kinds (the Deployment beside its policy) are skipped."""
    out: list[ScalingPolicy] = []
    problems: list[tuple[str, str]] = []
    for loaded in documents(path):
        if _other_kind(loaded.doc):
            continue
        try:
            out.append(parse_policy(loaded.doc))
        except SpecError as exc:
            name = policy_name(loaded.doc)
            problems.extend((f"{name}: {p}" if p else name, m) for p, m in exc.problems)
    if problems:
        raise SpecError("; ".join(f"{p}: {m}" for p, m in problems), problems)
    return out


def load_policy(path: Path, name: str | None = None) -> ScalingPolicy:
    policies = load_policies(path)
    if not policies:
        raise SpecError("no ScalingPolicy in file", [("", "no ScalingPolicy document in file")])
    if name is None:
        if len(policies) > 1:
            known = ", ".join(p.metadata.name for p in policies)
            raise SpecError(
                f"{len(policies)} policies in file",
                [("metadata.name", f"the file has {len(policies)} policies ({known}): choose one")],
            )
        return policies[0]
    for p in policies:
        if p.metadata.name == name:
            return p
    known = ", ".join(p.metadata.name for p in policies)
    raise SpecError(
        f"no policy named {name!r}",
        [("metadata.name", f"no policy named {name!r}; file has {known}")],
    )


ROOT_PATH = "(root)"


def _expand(files: Sequence[Path]) -> list[Path]:
    """Directories stand for the *.yaml and *.yml files directly inside them."""
    out: list[Path] = []
    for path in files:
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
            )
            out.extend(found or [path])
        else:
            out.append(path)
    return out


def _other_kind(doc: Any) -> bool:
    """A document of another kind (say, the Deployment beside its policy): not ours to check."""
    if not isinstance(doc, dict):
        return False
    kind, api = doc.get("kind"), doc.get("apiVersion")
    return (
        isinstance(kind, str)
        and isinstance(api, str)
        and kind != KIND
        and not api.startswith(f"{API_GROUP}/")
    )


# ObjectMeta's fields (k8s.io/apimachinery meta/v1). parse_policy ignores metadata it does not
# read; validate still catches a misspelt key such as `namespce`.
OBJECT_META_FIELDS = (
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
)


def _header_problems(doc: Any) -> list[tuple[str, str]]:
    """apiVersion and kind left out: parse_policy fills them in (scenario files inline policies
    without them), but a manifest for `kubectl apply` must say what it is."""
    if not isinstance(doc, dict):
        return []
    return [
        (key, f"required field is missing (use {want})")
        for key, want in (("apiVersion", API_VERSION), ("kind", KIND))
        if key not in doc
    ]


def _cluster_problems(doc: Any) -> list[tuple[str, str]]:
    """What parse_policy accepts but `kubectl apply` would not: a misspelt metadata key."""
    out: list[tuple[str, str]] = []
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    for key in meta if isinstance(meta, dict) else ():
        if key not in OBJECT_META_FIELDS:
            close = difflib.get_close_matches(str(key), OBJECT_META_FIELDS, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            out.append((f"metadata.{key}", f"unknown field{hint}"))
    return out


def _target_identity(policy: ScalingPolicy) -> tuple[str, ...]:
    target = policy.spec.target
    if target.kubernetes is not None:
        k = target.kubernetes
        return ("kubernetes", policy.metadata.namespace, k.kind, k.name)
    assert target.bigtable is not None
    b = target.bigtable
    return ("bigtable", b.project, b.instance, b.cluster)


def _line(path: Path, name: str, field: str, message: str) -> str:
    return f"{path}: {name}: {field or ROOT_PATH}: {message}"


def validate_files(files: Sequence[Path], warnings: list[str] | None = None) -> list[str]:
    """Problems as lines `FILE: NAME: FIELD: MESSAGE`; empty when every manifest is valid.

    Across all the files given it also looks for one policy defined twice (same namespace/name)
    and two Active policies on one target (Shadow and Paused twins are fine). Each manifest is
    valid on its own in those cases, so they are appended to `warnings` (same line format), not
    reported as problems.
    """
    lines: list[str] = []
    cross: list[str] = [] if warnings is None else warnings
    names: dict[str, Path] = {}
    active: dict[tuple[str, ...], tuple[str, Path]] = {}
    for path in _expand(files):
        if path.is_dir():
            lines.append(_line(path, "<file>", "", "no .yaml or .yml files in this directory"))
            continue
        try:
            loaded_docs = list(documents(path))
        except SpecError as exc:
            lines.extend(_line(path, "<file>", p, m) for p, m in exc.problems)
            continue
        ours = [d for d in loaded_docs if not _other_kind(d.doc)]
        if not ours:
            lines.append(_line(path, "<file>", "", "no ScalingPolicy document in file"))
        for loaded in ours:
            name = policy_name(loaded.doc)
            if name == "<unnamed>":
                name = f"<document {loaded.index + 1}>"
            header = _header_problems(loaded.doc) + _cluster_problems(loaded.doc)
            lines.extend(_line(path, name, p, m) for p, m in header)
            try:
                policy = parse_policy(loaded.doc)
            except SpecError as exc:
                lines.extend(_line(path, name, p, m) for p, m in exc.problems)
                continue
            cross.extend(_line(path, name, p, m) for p, m in policy_warnings(policy))
            if policy.key in names:
                cross.append(
                    _line(
                        path,
                        name,
                        "metadata.name",
                        f"ScalingPolicy {policy.key} is defined twice (also in {names[policy.key]})",
                    )
                )
                continue
            names[policy.key] = path
            if policy.spec.mode is not Mode.ACTIVE:
                continue
            ident = _target_identity(policy)
            if ident in active:
                other, where = active[ident]
                cross.append(
                    _line(
                        path,
                        name,
                        "spec.target",
                        f"{policy.spec.target.describe()} is also scaled by Active policy "
                        f"{other} ({where}); make one of them Shadow or Paused",
                    )
                )
            else:
                active[ident] = (policy.key, path)
    return lines


# Above this a bare --metric value for a Utilization target is a percent: as a fraction it would
# be more than 1000 % (averageUtilization's own ceiling), so 85 means 85 %, as HPA users write it.
UTILIZATION_PERCENT_ABOVE = 10.0


def parse_metric_value(raw: str, utilization: bool = False) -> float:
    """A --metric value: a number, a quantity ("500m") or a percent ("85%", a fraction 0.85).
    For a Utilization target (`utilization`) a bare number above 10 is a percent as well."""
    text = raw.strip()
    if text.endswith("%"):
        try:
            return parse_quantity(text[:-1]) / 100.0
        except ValueError:
            raise ValueError(f"not a percentage: {raw!r}") from None
    value = parse_quantity(text)
    if utilization and value > UTILIZATION_PERCENT_ABOVE:
        return value / 100.0
    return value


def evaluate(policy: ScalingPolicy, current: int, values: dict[str, float], now: Any) -> Decision:
    """One decision as on the first tick: no recommendations, no scale events, and no activity
    on record, so the scale-to-zero cooldown (like every other cooldown) has nothing to hold."""
    observations = [Observation.of(name, now, value) for name, value in values.items()]
    idle_since = now - timedelta(seconds=policy.spec.scale_to_zero.cooldown_seconds)
    decision, _ = engine.decide(
        policy.spec,
        PolicyState(last_active_at=idle_since),
        observations,
        Capacity(current=current),
        now,
        policy=policy.key,
    )
    return decision


def evaluate_json(decision: Decision) -> dict[str, Any]:
    out = decision.to_dict()
    out["metrics"] = [
        {
            "name": m.name,
            "value": m.value,
            "target": m.target,
            "targetType": m.target_type,
            "proposedReplicas": m.proposed,
            "status": m.status.value,
            "reason": m.reason,
            "error": m.error,
            "offsetSeconds": m.offset_seconds,
        }
        for m in decision.metrics
    ]
    return out


def evaluate_command(
    path: Path,
    current: int,
    metric_args: Sequence[str],
    as_json: bool,
    now_text: str | None,
    name: str | None,
) -> int:
    try:
        policy = load_policy(path, name)
    except SpecError as exc:
        for field, message in exc.problems:
            print(f"{path}: {field}: {message}" if field else f"{path}: {message}", file=sys.stderr)
        return 1
    known = {m.name for m in policy.spec.metrics}
    utilization = {
        m.name
        for m in policy.spec.metrics
        if m.target is not None and m.target.type is TargetType.UTILIZATION
    }
    values: dict[str, float] = {}
    bad: list[str] = []
    for arg in metric_args:
        metric_name, sep, raw = arg.partition("=")
        metric_name = metric_name.strip()
        if not sep or not metric_name:
            bad.append(f"--metric {arg!r}: expected NAME=VALUE")
            continue
        if metric_name not in known:
            bad.append(
                f"--metric {metric_name}: the policy has no such metric (it has: {', '.join(sorted(known))})"
            )
            continue
        if metric_name in values:
            bad.append(f"--metric {metric_name}: given twice (one value per metric)")
            continue
        try:
            values[metric_name] = parse_metric_value(raw, metric_name in utilization)
        except ValueError as exc:
            bad.append(f"--metric {metric_name}: {exc}")
    try:
        now = parse_iso(now_text) if now_text is not None else SystemClock().now()
    except ValueError:
        bad.append(f"--now {now_text!r}: not an ISO-8601 time")
    if bad:
        for line in bad:
            print(line, file=sys.stderr)
        return 1
    try:
        decision = evaluate(policy, current, values, now)
    except OverflowError:  # a window reaches before year 1, or a schedule's search past 9999
        print(
            f"--now {now_text!r}: out of range (the policy's windows and schedules reach "
            "before year 1 or after year 9999 from it)",
            file=sys.stderr,
        )
        return 1
    if as_json:
        print(json.dumps(evaluate_json(decision)))
    else:
        print(f"{policy.key}: {decision.summary()}")
        for result in decision.metrics:
            shown = "-" if result.value is None else f"{result.value:g}"
            print(
                f"  {result.name}: value {shown} target {result.target} ({result.target_type})"
                f" -> {result.proposed} [{result.status.value}] {result.reason or ''}"
            )
    return 0
