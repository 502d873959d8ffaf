"""Loading ScalingPolicy manifests from YAML files, and the `validate` / `evaluate` commands.

The shell around `gemini.policy.spec.parse_policy`: file reading, multi-document YAML, and
error lines `FILE: NAME: FIELD: MESSAGE`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gemini.clock import SystemClock, parse_iso
from gemini.errors import SpecError
from gemini.policy import engine
from gemini.policy.decision import Capacity, Decision
from gemini.policy.spec import ScalingPolicy, parse_policy, parse_quantity, policy_name
from gemini.policy.state import PolicyState
from gemini.series import Observation


@dataclass(frozen=True, slots=True)
class Loaded:
    file: Path
    index: int
    doc: Any


def documents(path: Path) -> Iterator[Loaded]:
    """Every non-empty YAML document in `path`. Raises SpecError on unreadable YAML."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", [("", f"cannot read file: {exc.strerror or exc}")]) from None
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "document"
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"invalid YAML at {where}: {problem}", [(where, f"invalid YAML: {problem}")]) from None
    for i, doc in enumerate(docs):
        if doc is not None:
            yield Loaded(path, i, doc)


def load_policies(path: Path) -> list[ScalingPolicy]:
    """All ScalingPolicy documents in `path`; SpecError (with every problem) if any is invalid."""
    out: list[ScalingPolicy] = []
    problems: list[tuple[str, str]] = []
    for loaded in documents(path):
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
        return policies[0]
    for p in policies:
        if p.metadata.name == name:
            return p
    known = ", ".join(p.metadata.name for p in policies)
    raise SpecError(f"no policy named {name!r}", [("metadata.name", f"no policy named {name!r}; file has {known}")])


def validate_files(files: Sequence[Path]) -> list[str]:
    """Problems as lines `FILE: NAME: FIELD: MESSAGE`; empty when every manifest is valid."""
    lines: list[str] = []
    for path in files:
        try:
            loaded_docs = list(documents(path))
        except SpecError as exc:
            lines.extend(f"{path}: <file>: {p}: {m}" for p, m in exc.problems)
            continue
        if not loaded_docs:
            lines.append(f"{path}: <file>: : no ScalingPolicy document in file")
        for loaded in loaded_docs:
            name = policy_name(loaded.doc)
            try:
                parse_policy(loaded.doc)
            except SpecError as exc:
                lines.extend(f"{path}: {name}: {p}: {m}" for p, m in exc.problems)
    return lines


def parse_metric_value(raw: str) -> float:
    text = raw.strip()
    if text.endswith("%"):
        return float(text[:-1]) / 100.0
    return parse_quantity(text)


def evaluate(policy: ScalingPolicy, current: int, values: dict[str, float], now: Any) -> Decision:
    observations = [Observation.of(name, now, value) for name, value in values.items()]
    decision, _ = engine.decide(
        policy.spec, PolicyState(), observations, Capacity(current=current), now, policy=policy.key
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
        }
        for m in decision.metrics
    ]
    return out


def evaluate_command(
    path: Path, current: int, metric_args: Sequence[str], as_json: bool, now_text: str | None, name: str | None
) -> int:
    try:
        policy = load_policy(path, name)
    except SpecError as exc:
        for p, m in exc.problems:
            print(f"{path}: {p}: {m}", file=sys.stderr)
        return 1
    known = {m.name for m in policy.spec.metrics}
    values: dict[str, float] = {}
    bad: list[str] = []
    for arg in metric_args:
        metric_name, sep, raw = arg.partition("=")
        metric_name = metric_name.strip()
        if not sep or not metric_name:
            bad.append(f"--metric {arg!r}: expected NAME=VALUE")
            continue
        if metric_name not in known:
            bad.append(f"--metric {metric_name}: the policy has no such metric (it has: {', '.join(sorted(known))})")
            continue
        try:
            values[metric_name] = parse_metric_value(raw)
        except ValueError as exc:
            bad.append(f"--metric {metric_name}: {exc}")
    try:
        now = parse_iso(now_text) if now_text else SystemClock().now()
    except ValueError:
        bad.append(f"--now {now_text!r}: not an ISO-8601 time")
    if bad:
        for line in bad:
            print(line, file=sys.stderr)
        return 1
    decision = evaluate(policy, current, values, now)
    if as_json:
        print(json.dumps(evaluate_json(decision)))
    else:
        print(f"{policy.key}: {decision.summary()}")
        for m in decision.metrics:
            shown = "-" if m.value is None else f"{m.value:g}"
            print(f"  {m.name}: value {shown} target {m.target} ({m.target_type}) -> {m.proposed} [{m.status.value}] {m.reason or ''}")
    return 0
