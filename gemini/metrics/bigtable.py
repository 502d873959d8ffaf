"""`source.bigtable`: a Bigtable cluster's CPU or storage metrics, read from Cloud Monitoring.

Built on `gemini.metrics.cloud_monitoring`: every cluster of one project read for the same metric
in a cycle shares one `ListTimeSeries` call (instance and cluster `one_of(...)`, results split by
the two labels). `read_bytes_used` gives the Bigtable scaler's storage floor its input
(`bigtable.googleapis.com/disk/bytes_used`, summed over storage types).

Must not import `gemini.scalers` (the scaler's shell wiring calls `read_bytes_used`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gemini.metrics import MetricRequest
from gemini.metrics.cloud_monitoring import (
    MonitoringReader,
    QuerySource,
    SeriesQuery,
    project_check,
    quote,
)
from gemini.policy.spec import BigtableMetric
from gemini.series import Observation

RESOURCE_TYPE = "bigtable_cluster"
INSTANCE_LABEL = "resource.labels.instance"
CLUSTER_LABEL = "resource.labels.cluster"
PROJECT_LABEL = "resource.labels.project"
BYTES_USED = "bigtable.googleapis.com/disk/bytes_used"

# metric -> (metric type, aligner, cross-series reducer)
_METRICS: dict[BigtableMetric, tuple[str, str, str]] = {
    BigtableMetric.CPU_LOAD: (
        "bigtable.googleapis.com/cluster/cpu_load",
        "ALIGN_MEAN",
        "REDUCE_MEAN",
    ),
    BigtableMetric.CPU_LOAD_HOTTEST_NODE: (
        "bigtable.googleapis.com/cluster/cpu_load_hottest_node",
        "ALIGN_MAX",
        "REDUCE_MAX",
    ),
    BigtableMetric.STORAGE_UTILIZATION: (
        "bigtable.googleapis.com/cluster/storage_utilization",
        "ALIGN_MAX",
        "REDUCE_MAX",
    ),
}


def metric_type(metric: BigtableMetric) -> str:
    return _METRICS[metric][0]


def cluster_query(
    name: str,
    project: str,
    instance: str,
    cluster: str,
    metric_type_: str,
    aligner: str,
    reducer: str,
) -> SeriesQuery:
    return SeriesQuery(
        name=name,
        project=project,
        filter=f"metric.type = {quote(metric_type_)}",
        aligner=aligner,
        reducer=reducer,
        alignment_period_seconds=60,
        lookback_seconds=300,
        split=((INSTANCE_LABEL, instance), (CLUSTER_LABEL, cluster)),
        non_negative=True,
        checks=(("resource.type", RESOURCE_TYPE), *project_check(PROJECT_LABEL, project)),
    )


class BigtableSource(QuerySource):
    """Reads cpu_load, cpu_load_hottest_node or storage_utilization per cluster (fractions)."""

    def query(self, request: MetricRequest) -> SeriesQuery:
        cfg = request.metric.source.bigtable
        if cfg is None:
            raise ValueError("not a bigtable metric")
        mtype, aligner, reducer = _METRICS[cfg.metric]
        return cluster_query(
            request.metric.name, cfg.project, cfg.instance, cfg.cluster, mtype, aligner, reducer
        )

    def bytes_used(
        self, clusters: Sequence[tuple[str, str, str]], now: datetime
    ) -> list[Observation]:
        """Bytes stored per (project, instance, cluster), batched like every other read."""
        return read_bytes_used(clusters, now, reader=self.reader)


def read_bytes_used(
    clusters: Sequence[tuple[str, str, str]],
    now: datetime,
    *,
    reader: MonitoringReader | None = None,
    client: Any | None = None,
) -> list[Observation]:
    """`bigtable.googleapis.com/disk/bytes_used` per (project, instance, cluster), in order.

    Observation names are "bytes_used:PROJECT/INSTANCE/CLUSTER".
    """
    reader = reader or MonitoringReader(client)
    queries = [
        cluster_query(f"bytes_used:{p}/{i}/{c}", p, i, c, BYTES_USED, "ALIGN_MEAN", "REDUCE_SUM")
        for p, i, c in clusters
    ]
    return reader.read(queries, now)
