"""Acceptance: `gemini validate` on manifests written the way users write them.

GOOD: what a user who read only CONTRACTS.md (and knows HPA or KEDA) plausibly writes; each must
exit 0 (warnings allowed, never an error line). BAD: each class of mistake the issue names, with
the field path that must be blamed. ODD: YAML that is not a manifest at all; never a traceback.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gemini import manifests
from gemini.cli import app

HEAD = """apiVersion: autoscaling.gemini.dev/v1alpha1
kind: ScalingPolicy
"""
PROM = """    source:
      prometheus:
        serverAddress: http://prometheus.monitoring:9090
        query: sum(rate(http_requests_total[2m]))
"""


def policy(spec: str, name: str = "web", meta: str = "") -> str:
    return f"{HEAD}metadata:\n  name: {name}\n{meta}spec:\n{spec}"


def k8s(rest: str, target: str = "    kubernetes: {name: web}\n") -> str:
    return f"  target:\n{target}  maxReplicas: 10\n{rest}"


def prom_metric(target: str, name: str = "rps") -> str:
    return f"  metrics:\n  - name: {name}\n{PROM}    target: {target}\n"


GOOD: list[tuple[str, str]] = [
    (
        "hpa-port-full-behavior",
        policy(
            """  target:
    kubernetes:
      apiVersion: apps/v1
      kind: Deployment
      name: web
  minReplicas: 2
  maxReplicas: 20
  metrics:
  - name: cpu
"""
            + PROM
            + """    target:
      type: Utilization
      averageUtilization: 70
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 300
      policies:
      - type: Percent
        value: 100
        periodSeconds: 15
    scaleUp:
      stabilizationWindowSeconds: 0
      policies:
      - type: Percent
        value: 100
        periodSeconds: 15
      - type: Pods
        value: 4
        periodSeconds: 15
      selectPolicy: Max
"""
        ),
    ),
    (
        "cloud-monitoring-project-and-filter",
        policy(
            k8s(
                """  metrics:
  - name: requests
    source:
      cloudMonitoring:
        project: my-project
        filter: metric.type="loadbalancing.googleapis.com/https/request_count"
    target:
      type: AverageValue
      averageValue: 100
"""
            )
        ),
    ),
    (
        "cloud-monitoring-aligner-reducer",
        policy(
            k8s(
                """  metrics:
  - name: latency
    source:
      cloudMonitoring:
        project: my-project
        filter: 'metric.type = "custom.googleapis.com/latency" AND resource.type = "k8s_container"'
        aligner: ALIGN_PERCENTILE_99
        reducer: REDUCE_MAX
        alignmentPeriodSeconds: 60
    target: {type: Value, value: 0.25}
"""
            )
        ),
    ),
    ("prometheus-minimal", policy(k8s(prom_metric("{type: AverageValue, averageValue: 50}")))),
    ("prometheus-https", policy(k8s(prom_metric("{type: Value, value: 1e3}")))),
    (
        "pubsub-backlog-average",
        policy(
            k8s(
                """  metrics:
  - name: backlog
    source:
      pubsub:
        subscription: projects/my-project/subscriptions/orders-sub
    target:
      type: AverageValue
      averageValue: 100
"""
            )
        ),
    ),
    (
        "pubsub-age-value",
        policy(
            k8s(
                """  metrics:
  - name: age
    source:
      pubsub:
        subscription: projects/my-project/subscriptions/orders-sub
        metric: oldest_unacked_message_age
    target: {type: Value, value: 120}
"""
            )
        ),
    ),
    (
        "pubsub-domain-scoped-project",
        policy(
            k8s(
                """  metrics:
  - name: backlog
    source: {pubsub: {subscription: "projects/example.com:proj/subscriptions/Orders.v2"}}
    target: {type: Value, value: "1k"}
"""
            )
        ),
    ),
    (
        "bigtable-target-minimal",
        policy(
            """  target:
    bigtable:
      project: my-project
      instance: my-instance
      cluster: my-instance-c1
  minReplicas: 1
  maxReplicas: 30
  metrics:
  - name: cpu
    source:
      bigtable:
        project: my-project
        instance: my-instance
        cluster: my-instance-c1
    target:
      type: Utilization
      averageUtilization: 60
""",
            name="bigtable",
        ),
    ),
    (
        "bigtable-value-decimal",
        policy(
            """  target: {bigtable: {project: p, instance: i, cluster: c}}
  maxReplicas: 10
  metrics:
  - name: cpu
    source: {bigtable: {project: p, instance: i, cluster: c, metric: cpu_load_hottest_node}}
    target: {type: Value, value: 0.7}
  - name: storage
    source: {bigtable: {project: p, instance: i, cluster: c, metric: storage_utilization}}
    target: {type: Utilization, averageUtilization: 70}
"""
        ),
    ),
    (
        "kubernetes-source",
        policy(
            k8s(
                """  metrics:
  - name: frontend-replicas
    source:
      kubernetes:
        apiVersion: apps/v1
        kind: Deployment
        name: frontend
    target: {type: AverageValue, averageValue: 2}
""",
                target="    kubernetes: {name: backend}\n",
            )
        ),
    ),
    ("value-quantity-milli", policy(k8s(prom_metric('{type: Value, value: "500m"}')))),
    ("value-quantity-unquoted", policy(k8s(prom_metric("{type: AverageValue, averageValue: 2k}")))),
    ("value-decimal", policy(k8s(prom_metric("{type: Value, value: 0.7}")))),
    (
        "utilization-above-100",
        policy(k8s(prom_metric("{type: Utilization, averageUtilization: 150}"))),
    ),
    ("metric-name-camel-case", policy(k8s(prom_metric("{type: Value, value: 1}", "queueDepth")))),
    ("metric-name-underscore", policy(k8s(prom_metric("{type: Value, value: 1}", "p99_latency")))),
    (
        "behavior-partial",
        policy(
            k8s(
                prom_metric("{type: Value, value: 10}")
                + "  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 60\n"
            )
        ),
    ),
    (
        "behavior-empty-parts",
        policy(k8s(prom_metric("{type: Value, value: 10}") + "  behavior: {scaleUp: {}}\n")),
    ),
    (
        "select-policy-disabled",
        policy(
            k8s(
                prom_metric("{type: Value, value: 10}")
                + "  behavior:\n    scaleDown:\n      selectPolicy: Disabled\n"
            )
        ),
    ),
    (
        "tolerance-both-directions",
        policy(
            k8s(
                prom_metric("{type: Value, value: 10}")
                + "  behavior:\n    scaleUp: {tolerance: 0.05}\n    scaleDown: {tolerance: 0.2}\n"
            )
        ),
    ),
    (
        "tolerance-quantity",
        policy(
            k8s(
                prom_metric("{type: Value, value: 10}")
                + '  behavior: {scaleUp: {tolerance: "50m"}}\n'
            )
        ),
    ),
    (
        "max-period-and-window",
        policy(
            k8s(
                prom_metric("{type: Value, value: 10}")
                + """  behavior:
    scaleDown:
      stabilizationWindowSeconds: 3600
      policies: [{type: Pods, value: 1, periodSeconds: 1800}]
      selectPolicy: Min
"""
            )
        ),
    ),
    (
        "schedules",
        policy(
            k8s(
                prom_metric("{type: Value, value: 10}")
                + """  schedules:
  - name: office-hours
    cron: "30 8 * * mon-fri"
    timeZone: Asia/Tokyo
    durationSeconds: 36000
    minReplicas: 5
  - name: nights
    cron: "0 22 * * *"
    durationSeconds: 28800
    maxReplicas: 3
  - name: quarter-start
    cron: "0 9 1 JAN,APR,JUL,OCT *"
    timeZone: America/New_York
    durationSeconds: 86400
    minReplicas: 4
    maxReplicas: 8
  - name: sundays
    cron: "0 0 * * 7"
    durationSeconds: 3600
    minReplicas: 2
  - name: daily
    cron: "@daily"
    durationSeconds: 600
    minReplicas: 2
"""
            )
        ),
    ),
    ("mode-shadow", policy(k8s(prom_metric("{type: Value, value: 1}") + "  mode: Shadow\n"))),
    ("mode-paused", policy(k8s(prom_metric("{type: Value, value: 1}") + "  mode: Paused\n"))),
    ("mode-active", policy(k8s(prom_metric("{type: Value, value: 1}") + "  mode: Active\n"))),
    (
        "metadata-full",
        policy(
            k8s(prom_metric("{type: Value, value: 1}")),
            meta="  namespace: shop\n  labels: {app: web, tier: frontend}\n"
            "  annotations: {owner: team-a}\n",
        ),
    ),
    (
        "status-block",
        policy(k8s(prom_metric("{type: Value, value: 1}")))
        + "status:\n  observedGeneration: 3\n  currentReplicas: 4\n  desiredReplicas: 4\n"
        "  conditions:\n  - {type: Ready, status: 'True', reason: Evaluated}\n",
    ),
    (
        "exported-metadata",
        policy(
            k8s(prom_metric("{type: Value, value: 1}")),
            meta="  creationTimestamp: null\n  generation: 2\n  resourceVersion: '123'\n"
            "  uid: 3f1c\n",
        ),
    ),
    (
        "several-documents-comments",
        "# policies for the shop\n---\n"
        + policy(k8s(prom_metric("{type: Value, value: 1}")), name="a")
        + "---\n# the second one\n"
        + policy(k8s(prom_metric("{type: Value, value: 1}") + "  mode: Shadow\n"), name="b")
        + "...\n---\n",
    ),
    (
        "beside-its-deployment",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 2}\n---\n"
        + policy(k8s(prom_metric("{type: Value, value: 1}"))),
    ),
    (
        "json-flow-style",
        json.dumps(
            {
                "apiVersion": "autoscaling.gemini.dev/v1alpha1",
                "kind": "ScalingPolicy",
                "metadata": {"name": "j"},
                "spec": {
                    "target": {"kubernetes": {"kind": "StatefulSet", "name": "db"}},
                    "maxReplicas": 3,
                    "metrics": [
                        {
                            "name": "q",
                            "source": {"prometheus": {"serverAddress": "http://p", "query": "q"}},
                            "target": {"type": "Value", "value": 1.5},
                        }
                    ],
                },
            }
        ),
    ),
    (
        "scale-to-zero",
        policy(
            k8s(
                """  minReplicas: 0
  metrics:
  - name: backlog
    source: {pubsub: {subscription: projects/p/subscriptions/jobs}}
    target: {type: AverageValue, averageValue: 10}
"""
            )
        ),
    ),
    (
        "custom-resource-target",
        policy(
            k8s(
                prom_metric("{type: Value, value: 1}"),
                target="    kubernetes: {apiVersion: argoproj.io/v1alpha1, kind: Rollout, name: api}\n",
            )
        ),
    ),
    (
        "several-metrics-every-source",
        policy(
            k8s(
                """  metrics:
  - name: cpu
    source: {prometheus: {serverAddress: "http://p:9090", query: "avg(cpu)"}}
    target: {type: Utilization, averageUtilization: 70}
  - name: backlog
    source: {pubsub: {subscription: projects/p/subscriptions/s-1}}
    target: {type: AverageValue, averageValue: "1k"}
  - name: cm
    source: {cloudMonitoring: {project: p, filter: 'metric.type="a.googleapis.com/b"'}}
    target: {type: Utilization, averageUtilization: 80}
  - name: follow
    source: {kubernetes: {name: other}}
    target: {type: Value, value: 4}
"""
            )
        ),
    ),
    ("crlf-line-ends", policy(k8s(prom_metric("{type: Value, value: 1}"))).replace("\n", "\r\n")),
    ("utf8-bom", "\ufeff" + policy(k8s(prom_metric("{type: Value, value: 1}")))),
    (
        "kubectl-list",
        "apiVersion: v1\nkind: List\nitems:\n"
        + "\n".join(
            ("- " if i == 0 else "  ") + line
            for i, line in enumerate(
                policy(k8s(prom_metric("{type: Value, value: 1}"))).split("\n")
            )
            if line
        )
        + "\n",
    ),
]

# Valid and evaluable, but probably not what was meant: exit 0 with a warning on the field.
WARN: list[tuple[str, str, str]] = [
    (
        "average-value-on-bigtable-cpu",
        policy(
            """  target: {bigtable: {project: p, instance: i, cluster: c}}
  maxReplicas: 10
  metrics:
  - name: cpu
    source: {bigtable: {project: p, instance: i, cluster: c}}
    target: {type: AverageValue, averageValue: 0.7}
"""
        ),
        "spec.metrics[0].target.type",
    ),
    (
        "keda-style-age-average-value",
        policy(
            k8s(
                """  metrics:
  - name: age
    source: {pubsub: {subscription: projects/p/subscriptions/s-1, metric: oldest_unacked_message_age}}
    target: {type: AverageValue, averageValue: 30}
"""
            )
        ),
        "spec.metrics[0].target.type",
    ),
    (
        "short-subscription-id",
        policy(
            k8s(
                """  metrics:
  - name: backlog
    source: {pubsub: {subscription: projects/p/subscriptions/s1}}
    target: {type: AverageValue, averageValue: 5}
"""
            )
        ),
        "spec.metrics[0].source.pubsub.subscription",
    ),
    (
        "utilization-on-replica-count",
        policy(
            k8s(
                """  metrics:
  - name: follow
    source: {kubernetes: {name: other}}
    target: {type: Utilization, averageUtilization: 50}
"""
            )
        ),
        "spec.metrics[0].target.type",
    ),
]

GOOD_TEXT = policy(k8s(prom_metric("{type: Value, value: 1}")))


def bad(spec_tail: str = "", metric: str | None = None, head: str = HEAD, meta: str = "") -> str:
    m = metric if metric is not None else prom_metric("{type: Value, value: 1}")
    return f"{head}metadata:\n  name: web\n{meta}spec:\n  target:\n    kubernetes: {{name: web}}\n  maxReplicas: 10\n{m}{spec_tail}"


def with_schedule(cron: str, tz: str = "UTC") -> str:
    return bad(
        f'  schedules:\n  - {{name: s, cron: "{cron}", timeZone: "{tz}", durationSeconds: 60, '
        "minReplicas: 2}\n"
    )


def rate(direction: str, period: int) -> str:
    return bad(
        f"  behavior:\n    {direction}:\n      policies:\n"
        f"      - {{type: Pods, value: 1, periodSeconds: {period}}}\n"
    )


# (id, text, the field paths that must be blamed, one line each)
BAD: list[tuple[str, str, list[str]]] = [
    ("typo-top", GOOD_TEXT.replace("spec:", "spce:"), ["spce", "spec"]),
    ("typo-spec", bad("  minReplica: 1\n"), ["spec.minReplica"]),
    ("typo-metric", bad(metric=prom_metric("{type: Value, value: 1}").replace("source:", "sorce:")), ["spec.metrics[0].sorce", "spec.metrics[0].source"]),
    ("typo-prometheus", bad(metric=prom_metric("{type: Value, value: 1}").replace("query:", "querry:")), ["spec.metrics[0].source.prometheus.querry", "spec.metrics[0].source.prometheus.query"]),
    ("typo-target-field", bad(metric=prom_metric("{type: Value, valeu: 1}")), ["spec.metrics[0].target.valeu"]),
    ("typo-rate-policy", bad("  behavior:\n    scaleUp:\n      policies: [{type: Pods, value: 1, period: 15}]\n"), ["spec.behavior.scaleUp.policies[0].period", "spec.behavior.scaleUp.policies[0].periodSeconds"]),
    ("typo-behavior", bad("  behavior:\n    scaleup: {}\n"), ["spec.behavior.scaleup"]),
    ("typo-metadata", bad(meta="  namespac: x\n"), ["metadata.namespac"]),
    ("typo-metadata-and-spec", bad("  maxReplica: 1\n", meta="  lables: {a: b}\n"), ["metadata.lables", "spec.maxReplica"]),
    ("typo-k8s-target", GOOD_TEXT.replace("{name: web}", "{name: web, knd: Deployment}"), ["spec.target.kubernetes.knd"]),
    ("duplicate-metric-names", bad(metric=prom_metric("{type: Value, value: 1}") + prom_metric("{type: Value, value: 2}").replace("  metrics:\n", "")), ["spec.metrics[1].name"]),
    ("min-above-max", bad("  minReplicas: 11\n"), ["spec.minReplicas"]),
    ("two-sources", bad(metric="  metrics:\n  - name: m\n    source: {prometheus: {serverAddress: 'http://p', query: q}, pubsub: {subscription: projects/p/subscriptions/abc}}\n    target: {type: Value, value: 1}\n"), ["spec.metrics[0].source"]),
    ("no-source-kind", bad(metric="  metrics:\n  - name: m\n    source: {}\n    target: {type: Value, value: 1}\n"), ["spec.metrics[0].source"]),
    ("target-both-kinds", GOOD_TEXT.replace("    kubernetes: {name: web}\n", "    kubernetes: {name: web}\n    bigtable: {project: p, instance: i, cluster: c}\n"), ["spec.target"]),
    ("target-no-kind", GOOD_TEXT.replace("    kubernetes: {name: web}\n", "    {}\n"), ["spec.target"]),
    ("subscription-short-name", bad(metric="  metrics:\n  - name: m\n    source: {pubsub: {subscription: orders}}\n    target: {type: Value, value: 1}\n"), ["spec.metrics[0].source.pubsub.subscription"]),
    ("subscription-topic-path", bad(metric="  metrics:\n  - name: m\n    source: {pubsub: {subscription: projects/p/topics/orders}}\n    target: {type: Value, value: 1}\n"), ["spec.metrics[0].source.pubsub.subscription"]),
    ("subscription-trailing-slash", bad(metric="  metrics:\n  - name: m\n    source: {pubsub: {subscription: projects/p/subscriptions/orders/}}\n    target: {type: Value, value: 1}\n"), ["spec.metrics[0].source.pubsub.subscription"]),
    ("subscription-empty-project", bad(metric="  metrics:\n  - name: m\n    source: {pubsub: {subscription: projects//subscriptions/orders}}\n    target: {type: Value, value: 1}\n"), ["spec.metrics[0].source.pubsub.subscription"]),
    ("cron-minute-61", with_schedule("61 * * * *"), ["spec.schedules[0].cron"]),
    ("cron-four-fields", with_schedule("0 9 * *"), ["spec.schedules[0].cron"]),
    ("cron-six-fields", with_schedule("0 0 9 * * *"), ["spec.schedules[0].cron"]),
    ("cron-words", with_schedule("every day at nine"), ["spec.schedules[0].cron"]),
    ("cron-bad-weekday", with_schedule("0 9 * * funday"), ["spec.schedules[0].cron"]),
    ("cron-unknown-nickname", with_schedule("@often"), ["spec.schedules[0].cron"]),
    ("time-zone-unknown", with_schedule("0 9 * * *", "Mars/Olympus"), ["spec.schedules[0].timeZone"]),
    ("time-zone-offset", with_schedule("0 9 * * *", "+02:00"), ["spec.schedules[0].timeZone"]),
    ("period-0", rate("scaleUp", 0), ["spec.behavior.scaleUp.policies[0].periodSeconds"]),
    ("period-1801", rate("scaleDown", 1801), ["spec.behavior.scaleDown.policies[0].periodSeconds"]),
    ("period-negative", rate("scaleDown", -15), ["spec.behavior.scaleDown.policies[0].periodSeconds"]),
    ("rate-value-0", bad("  behavior:\n    scaleUp:\n      policies: [{type: Percent, value: 0, periodSeconds: 15}]\n"), ["spec.behavior.scaleUp.policies[0].value"]),
    ("rate-type-unknown", bad("  behavior:\n    scaleUp:\n      policies: [{type: Replicas, value: 1, periodSeconds: 15}]\n"), ["spec.behavior.scaleUp.policies[0].type"]),
    ("window-3601", bad("  behavior:\n    scaleDown: {stabilizationWindowSeconds: 3601}\n"), ["spec.behavior.scaleDown.stabilizationWindowSeconds"]),
    ("select-policy-lowercase", bad("  behavior:\n    scaleDown: {selectPolicy: max}\n"), ["spec.behavior.scaleDown.selectPolicy"]),
    ("tolerance-negative", bad("  behavior:\n    scaleDown: {tolerance: -0.1}\n"), ["spec.behavior.scaleDown.tolerance"]),
    ("value-zero", bad(metric=prom_metric("{type: Value, value: 0}")), ["spec.metrics[0].target.value"]),
    ("value-negative", bad(metric=prom_metric("{type: Value, value: -3}")), ["spec.metrics[0].target.value"]),
    ("average-value-negative-quantity", bad(metric=prom_metric('{type: AverageValue, averageValue: "-500m"}')), ["spec.metrics[0].target.averageValue"]),
    ("utilization-zero", bad(metric=prom_metric("{type: Utilization, averageUtilization: 0}")), ["spec.metrics[0].target.averageUtilization"]),
    ("value-not-a-number", bad(metric=prom_metric("{type: Value, value: lots}")), ["spec.metrics[0].target.value"]),
    ("value-infinite", bad(metric=prom_metric("{type: Value, value: .inf}")), ["spec.metrics[0].target.value"]),
    ("type-value-with-average-value", bad(metric=prom_metric("{type: Value, averageValue: 5}")), ["spec.metrics[0].target.value"]),
    ("type-average-with-utilization", bad(metric=prom_metric("{type: AverageValue, averageUtilization: 50}")), ["spec.metrics[0].target.averageValue"]),
    ("type-utilization-with-value", bad(metric=prom_metric("{type: Utilization, value: 50}")), ["spec.metrics[0].target.averageUtilization"]),
    ("type-value-with-two-fields", bad(metric=prom_metric("{type: Value, value: 5, averageValue: 5}")), ["spec.metrics[0].target.averageValue"]),
    ("type-unknown", bad(metric=prom_metric("{type: External, value: 5}")), ["spec.metrics[0].target.type"]),
    ("type-missing", bad(metric=prom_metric("{value: 5}")), ["spec.metrics[0].target.type"]),
    ("utilization-on-backlog", bad(metric="  metrics:\n  - name: m\n    source: {pubsub: {subscription: projects/p/subscriptions/abc}}\n    target: {type: Utilization, averageUtilization: 50}\n"), ["spec.metrics[0].target.type"]),
    ("missing-max", GOOD_TEXT.replace("  maxReplicas: 10\n", ""), ["spec.maxReplicas"]),
    ("missing-target", GOOD_TEXT.replace("  target:\n    kubernetes: {name: web}\n", ""), ["spec.target"]),
    ("missing-metrics", GOOD_TEXT.split("  metrics:")[0], ["spec.metrics"]),
    ("empty-metrics", GOOD_TEXT.split("  metrics:")[0] + "  metrics: []\n", ["spec.metrics"]),
    ("missing-metric-target", bad(metric=prom_metric("{}").replace("    target: {}\n", "")), ["spec.metrics[0].target"]),
    ("missing-metric-name", bad(metric=prom_metric("{type: Value, value: 1}").replace("  - name: rps\n    source:", "  - source:")), ["spec.metrics[0].name"]),
    ("missing-target-name", GOOD_TEXT.replace("{name: web}", "{kind: Deployment}"), ["spec.target.kubernetes.name"]),
    ("missing-subscription", bad(metric="  metrics:\n  - name: m\n    source: {pubsub: {metric: num_undelivered_messages}}\n    target: {type: Value, value: 1}\n"), ["spec.metrics[0].source.pubsub.subscription"]),
    ("missing-bigtable-cluster", GOOD_TEXT.replace("    kubernetes: {name: web}\n", "    bigtable: {project: p, instance: i}\n"), ["spec.target.bigtable.cluster"]),
    ("missing-prometheus-query", bad(metric="  metrics:\n  - name: m\n    source: {prometheus: {serverAddress: 'http://p'}}\n    target: {type: Value, value: 1}\n"), ["spec.metrics[0].source.prometheus.query"]),
    ("missing-metadata-name", GOOD_TEXT.replace("  name: web\n", "  namespace: x\n", 1), ["metadata.name"]),
    ("missing-metadata", GOOD_TEXT.replace("metadata:\n  name: web\n", ""), ["metadata"]),
    ("missing-spec", HEAD + "metadata:\n  name: web\n", ["spec"]),
    ("missing-api-version", GOOD_TEXT.replace("apiVersion: autoscaling.gemini.dev/v1alpha1\n", ""), ["apiVersion"]),
    ("missing-kind", GOOD_TEXT.replace("kind: ScalingPolicy\n", ""), ["kind"]),
    ("wrong-api-version-version", GOOD_TEXT.replace("v1alpha1", "v1"), ["apiVersion"]),
    ("wrong-api-version-hpa", GOOD_TEXT.replace("autoscaling.gemini.dev/v1alpha1", "autoscaling/v2"), ["apiVersion"]),
    ("wrong-kind", GOOD_TEXT.replace("kind: ScalingPolicy", "kind: ScalingPolicies"), ["kind"]),
    ("wrong-kind-hpa-with-our-group", GOOD_TEXT.replace("kind: ScalingPolicy", "kind: HorizontalPodAutoscaler"), ["kind"]),
    ("max-zero", GOOD_TEXT.replace("maxReplicas: 10", "maxReplicas: 0"), ["spec.maxReplicas"]),
    ("max-beyond-int32", GOOD_TEXT.replace("maxReplicas: 10", "maxReplicas: 1.0e+100"), ["spec.maxReplicas"]),
    ("min-negative", bad("  minReplicas: -1\n"), ["spec.minReplicas"]),
    ("max-boolean", GOOD_TEXT.replace("maxReplicas: 10", "maxReplicas: true"), ["spec.maxReplicas"]),
    ("max-not-integer", GOOD_TEXT.replace("maxReplicas: 10", "maxReplicas: 2.5"), ["spec.maxReplicas"]),
    ("mode-unknown", bad("  mode: Dry\n"), ["spec.mode"]),
    ("mode-lowercase", bad("  mode: shadow\n"), ["spec.mode"]),
    ("metadata-name-uppercase", GOOD_TEXT.replace("name: web\n", "name: Web\n", 1), ["metadata.name"]),
    ("metric-name-with-space", bad(metric=prom_metric("{type: Value, value: 1}", '"my metric"')), ["spec.metrics[0].name"]),
    ("pubsub-metric-unknown", bad(metric="  metrics:\n  - name: m\n    source: {pubsub: {subscription: projects/p/subscriptions/abc, metric: backlog}}\n    target: {type: Value, value: 1}\n"), ["spec.metrics[0].source.pubsub.metric"]),
    ("bigtable-metric-unknown", bad(metric="  metrics:\n  - name: m\n    source: {bigtable: {project: p, instance: i, cluster: c, metric: memory}}\n    target: {type: Value, value: 1}\n"), ["spec.metrics[0].source.bigtable.metric"]),
    ("cloud-monitoring-no-metric-type", bad(metric="  metrics:\n  - name: m\n    source: {cloudMonitoring: {project: p, filter: 'resource.type=\"gce_instance\"'}}\n    target: {type: Value, value: 1}\n"), ["spec.metrics[0].source.cloudMonitoring.filter"]),
    ("prometheus-no-scheme", bad(metric="  metrics:\n  - name: m\n    source: {prometheus: {serverAddress: 'prometheus:9090', query: q}}\n    target: {type: Value, value: 1}\n"), ["spec.metrics[0].source.prometheus.serverAddress"]),
    ("bigtable-min-zero", GOOD_TEXT.replace("    kubernetes: {name: web}\n", "    bigtable: {project: p, instance: i, cluster: c}\n").replace("  maxReplicas: 10\n", "  maxReplicas: 10\n  minReplicas: 0\n"), ["spec.minReplicas"]),
    ("duplicate-key", GOOD_TEXT.replace("  maxReplicas: 10\n", "  maxReplicas: 10\n  maxReplicas: 20\n"), ["line 9"]),
    ("schedule-without-bounds", bad('  schedules:\n  - {name: s, cron: "0 9 * * *", durationSeconds: 60}\n'), ["spec.schedules[0]"]),
    ("schedule-min-above-max", bad('  schedules:\n  - {name: s, cron: "0 9 * * *", durationSeconds: 60, minReplicas: 5, maxReplicas: 2}\n'), ["spec.schedules[0]"]),
    ("schedule-duplicate-names", bad('  schedules:\n  - {name: s, cron: "0 9 * * *", durationSeconds: 60, minReplicas: 2}\n  - {name: s, cron: "0 18 * * *", durationSeconds: 60, minReplicas: 2}\n'), ["spec.schedules[1].name"]),
]  # fmt: skip

LINE = re.compile(r"^(?P<file>[^:]+): (?P<name>[^:]+): (?P<path>[^:]+): (?P<message>.+)$")

runner = CliRunner()


def run(tmp_path: Path, text: str, name: str = "policy.yaml") -> tuple[int, list[str], Path]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr.splitlines(), path


@pytest.mark.parametrize("text", [c[1] for c in GOOD], ids=[c[0] for c in GOOD])
def test_good_manifest_exits_0(tmp_path: Path, text: str) -> None:
    code, lines, _ = run(tmp_path, text)
    assert (code, lines) == (0, [])


@pytest.mark.parametrize(("text", "field"), [c[1:] for c in WARN], ids=[c[0] for c in WARN])
def test_plausible_mismatch_is_a_warning(tmp_path: Path, text: str, field: str) -> None:
    code, lines, path = run(tmp_path, text)
    assert code == 0
    assert len(lines) == 1
    assert lines[0].startswith(f"warning: {path}: web: {field}: ")


@pytest.mark.parametrize(("text", "paths"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_manifest_names_the_field(tmp_path: Path, text: str, paths: list[str]) -> None:
    code, lines, path = run(tmp_path, text)
    assert code == 1
    assert lines, "no problem reported"
    blamed = []
    for line in lines:
        assert line.startswith(f"{path}: "), line
        match = LINE.match(line[len(str(path)) - len(path.name) :])
        assert match is not None, f"not FILE: NAME: FIELD: MESSAGE: {line!r}"
        blamed.append(match["path"])
    assert sorted(blamed) == sorted(paths)


ODD = [
    ("empty", ""),
    ("only-comments", "# nothing here\n"),
    ("null", "~\n"),
    ("scalar", "hello\n"),
    ("number", "42\n"),
    ("list", "- a\n- b\n"),
    ("list-of-manifests", "- " + GOOD_TEXT.replace("\n", "\n  ")),
    ("nested-nulls", HEAD + "metadata: null\nspec: null\n"),
    ("spec-list", HEAD + "metadata: {name: w}\nspec: [1, 2]\n"),
    ("metrics-scalars", bad().replace("  metrics:\n", "  metrics: [7, null, x]\n  old:\n")),
    ("huge-number", bad("  minReplicas: 99999999999999999999999999999999999\n")),
    ("huge-float", bad(metric=prom_metric("{type: Value, value: 1e400}"))),
    ("nan", bad(metric=prom_metric("{type: Value, value: .nan}"))),
    ("unicode", GOOD_TEXT.replace("name: web\n", "name: wéb-日本\n", 1)),
    ("unicode-key", bad("  größe: 1\n")),
    ("tab-indent", HEAD + "metadata:\n\tname: w\n"),
    ("unclosed-flow", HEAD + "metadata: {name: w\n"),
    ("bad-indent", HEAD + "metadata:\n  name: w\n   namespace: x\n"),
    ("recursive-alias", "a: &a [*a]\n"),
    ("complex-key", "? [a, b]\n: 1\n"),
    ("python-tag", HEAD + "metadata: {name: w}\nspec: !!python/object:os.system {}\n"),
    ("binary-tag", HEAD + "metadata: {name: !!binary aGVsbG8=}\n"),
    ("timestamp-name", HEAD + "metadata: {name: 2026-01-01}\n"),
    ("integer-keys", HEAD + "metadata: {name: w}\nspec: {1: 2, true: 3}\n"),
    ("anchors-merge", GOOD_TEXT + "---\n" + "x: &x {a: 1}\ny:\n  <<: *x\n"),
    ("document-of-lists", "---\n[]\n---\n{}\n"),
    ("very-long-line", bad(metric=prom_metric("{type: Value, value: " + "9" * 5000 + "}"))),
]


@pytest.mark.parametrize("text", [c[1] for c in ODD], ids=[c[0] for c in ODD])
def test_odd_yaml_is_a_clear_error_not_a_traceback(tmp_path: Path, text: str) -> None:
    code, lines, path = run(tmp_path, text)
    assert code == 1
    assert lines
    for line in lines:
        assert line.startswith(f"{path}: "), line
        assert "Traceback" not in line


def test_odd_yaml_in_a_real_process(tmp_path: Path) -> None:
    paths = []
    for name, text in ODD:
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    proc = subprocess.run(
        [sys.executable, "-m", "gemini", "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert {line.split(": ", 1)[0] for line in proc.stderr.splitlines()} == set(map(str, paths))


# Any JSON-like value anywhere in a manifest: problems as lines, never an exception.
_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_TREE = st.recursive(
    _LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_PLACES = [
    ("metadata",),
    ("spec",),
    ("spec", "target"),
    ("spec", "target", "kubernetes"),
    ("spec", "maxReplicas"),
    ("spec", "metrics"),
    ("spec", "metrics", 0, "source"),
    ("spec", "metrics", 0, "target"),
    ("spec", "metrics", 0, "target", "value"),
    ("spec", "behavior"),
    ("spec", "behavior", "scaleUp", "policies"),
    ("spec", "schedules"),
    ("status",),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(place=st.sampled_from(_PLACES), value=_TREE)
def test_any_value_anywhere_never_raises(place: tuple[str | int, ...], value: object) -> None:
    import yaml

    doc = yaml.safe_load(GOOD_TEXT)
    node = doc
    for key in place[:-1]:
        if isinstance(key, str) and key not in node:
            node[key] = {}
        node = node[key]
    node[place[-1]] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        path.write_text(json.dumps(doc, allow_nan=True))
        lines = manifests.validate_files([path])
    for line in lines:
        assert line.startswith(f"{path}: ")
