"""A valid ScalingPolicy manifest to mutate in tables of bad cases."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Doc = dict[str, Any]

_BASE: Doc = {
    "apiVersion": "autoscaling.gemini.dev/v1alpha1",
    "kind": "ScalingPolicy",
    "metadata": {"name": "worker", "namespace": "jobs"},
    "spec": {
        "target": {"kubernetes": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"}},
        "minReplicas": 1,
        "maxReplicas": 10,
        "metrics": [
            {
                "name": "backlog",
                "source": {"pubsub": {"subscription": "projects/p1/subscriptions/work"}},
                "target": {"type": "AverageValue", "averageValue": 100},
            }
        ],
        "behavior": {
            "scaleDown": {
                "stabilizationWindowSeconds": 300,
                "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
            }
        },
        "schedules": [
            {
                "name": "office",
                "cron": "30 8 * * mon-fri",
                "timeZone": "Asia/Tokyo",
                "durationSeconds": 41400,
                "minReplicas": 5,
            }
        ],
    },
}

BIGTABLE_TARGET = {"bigtable": {"project": "p1", "instance": "inst", "cluster": "inst-c1"}}
BIGTABLE_CPU = {"bigtable": {"project": "p1", "instance": "inst", "cluster": "inst-c1"}}
STEPS = {"steps": [{"upperBound": 10, "adjustment": -1}, {"lowerBound": 10, "adjustment": 2}]}


def base() -> Doc:
    return copy.deepcopy(_BASE)


def metric(doc: Doc, i: int = 0) -> Doc:
    return doc["spec"]["metrics"][i]  # type: ignore[no-any-return]


def changed(fn: Callable[[Doc], object]) -> Doc:
    """A fresh base manifest with `fn` applied to it (fn mutates in place)."""
    doc = base()
    fn(doc)
    return doc


def _steps(path: str) -> list[str | int]:
    out: list[str | int] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        out.append(name)
        for index in rest.split("[") if rest else []:
            out.append(int(index.rstrip("]")))
    return out


def put(path: str, value: object, doc: Doc | None = None) -> Doc:
    """A base manifest (or `doc`) with the value at `path` (e.g. spec.metrics[0].name) set."""
    doc = base() if doc is None else doc
    *parents, last = _steps(path)
    node: Any = doc
    for step in parents:
        node = node[step]
    node[last] = copy.deepcopy(value)
    return doc


def drop(path: str, doc: Doc | None = None) -> Doc:
    """A base manifest (or `doc`) without the field at `path`."""
    doc = base() if doc is None else doc
    *parents, last = _steps(path)
    node: Any = doc
    for step in parents:
        node = node[step]
    del node[last]
    return doc
