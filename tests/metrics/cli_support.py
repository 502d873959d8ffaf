"""Shared by the `gemini metrics` CLI tests: a manifest with a Pub/Sub worker policy and a
Bigtable policy, and a runner for the real CLI in a subprocess against a given endpoint."""

from __future__ import annotations

import os
import subprocess
import sys

BACKLOG = "pubsub.googleapis.com/subscription/num_undelivered_messages"
AGE = "pubsub.googleapis.com/subscription/oldest_unacked_message_age"
CPU = "bigtable.googleapis.com/cluster/cpu_load"

WORKER_AND_STORE = """\
apiVersion: autoscaling.gemini.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: worker, namespace: jobs}
spec:
  target: {kubernetes: {name: worker}}
  minReplicas: 1
  maxReplicas: 50
  metrics:
    - name: backlog
      source: {pubsub: {subscription: projects/acme/subscriptions/orders}}
      target: {type: AverageValue, averageValue: 100}
      maxAgeSeconds: 180
    - name: age
      source: {pubsub: {subscription: projects/acme/subscriptions/orders,
                        metric: oldest_unacked_message_age}}
      target: {type: Value, value: 600}
---
apiVersion: autoscaling.gemini.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: store}
spec:
  target: {bigtable: {project: acme, instance: main, cluster: main-c1}}
  minReplicas: 3
  maxReplicas: 30
  metrics:
    - name: cpu
      source: {bigtable: {project: acme, instance: main, cluster: main-c1}}
      target: {type: Utilization, averageUtilization: 60}
      maxAgeSeconds: 600
"""


def run_cli(args: list[str], endpoint: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GEMINI_MONITORING_ENDPOINT": endpoint}
    return subprocess.run(
        [sys.executable, "-m", "gemini", *args], capture_output=True, text=True, env=env, timeout=60
    )
