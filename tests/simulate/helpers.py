"""Small scenario builders for the simulator tests (synthetic traces written to tmp dirs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from gemini.series import Sample, write_trace

T0 = datetime(2024, 1, 1, tzinfo=UTC)


# The `gemini simulate --json` keys CONTRACTS.md promises (top level, and each result).
CONTRACT_TOP_KEYS = frozenset({"scenario", "steps", "simulatedHours", "wallSeconds", "results"})
CONTRACT_RESULT_KEYS = frozenset(
    {
        "name",
        "kind",
        "capacityHours",
        "sloViolationMinutes",
        "scaleEvents",
        "maxReplicas",
        "meanReplicas",
        "cost",
    }
)


def policy_doc(name: str = "web", target: int = 60, **spec: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "autoscaling.gemini.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": name},
        "spec": {
            "target": {"kubernetes": {"name": name}},
            "minReplicas": 1,
            "maxReplicas": 40,
            "metrics": [
                {
                    "name": "utilization",
                    "source": {"prometheus": {"serverAddress": "http://p:9090", "query": "up"}},
                    "target": {"type": "Utilization", "averageUtilization": target},
                }
            ],
        },
    }
    doc["spec"].update(spec)
    return doc


def write_series(path: Path, values: list[float], step_s: float = 60.0) -> Path:
    write_trace(path, [Sample(T0 + timedelta(seconds=i * step_s), v) for i, v in enumerate(values)])
    return path


def daily_wave(hours: int = 12) -> list[float]:
    """Requests per second, one value per minute: a ramp up and down with a burst."""
    out = []
    for i in range(hours * 60):
        phase = (i % 240) / 240
        base = 1.0 + 6.0 * (phase if phase < 0.5 else 1 - phase) * 2
        if 300 <= i < 310:
            base *= 2.5
        out.append(round(base, 3))
    return out


def write_scenario(
    tmp: Path,
    values: list[float] | None = None,
    *,
    policies: list[Any] | None = None,
    **overrides: Any,
) -> Path:
    write_series(tmp / "trace.csv", values if values is not None else daily_wave())
    (tmp / "policies").mkdir(exist_ok=True)
    (tmp / "policies" / "web.yaml").write_text(yaml.safe_dump(policy_doc()))
    doc: dict[str, Any] = {
        "name": "synthetic",
        "trace": {"file": "trace.csv", "kind": "demand"},
        "backend": {
            "kind": "deployment",
            "capacityPerReplica": 1.0,
            "startupSeconds": 60,
            "initialReplicas": 2,
        },
        "slo": {"maxUtilization": 0.9},
        "metrics": {"delaySeconds": 0, "sampleSeconds": 60},
        "policies": policies if policies is not None else ["policies/web.yaml"],
        "baselines": ["oracle", "static-peak", "hpa-default"],
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    path = tmp / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path
