"""`source.pubsub`: a subscription's backlog or oldest unacked age, read from Cloud Monitoring.

Built on `gemini.metrics.cloud_monitoring`: every Pub/Sub metric of one project and one kind read
in a cycle shares one `ListTimeSeries` call (`resource.labels.subscription_id = one_of(...)`).
Pub/Sub samples these metrics every 60 s and they become visible up to ~120 s later, so the
sample timestamps are kept: the engine's `maxAgeSeconds` judges freshness.

Must not import `gemini.scalers`.
"""

from __future__ import annotations

from gemini.metrics import MetricRequest
from gemini.metrics.cloud_monitoring import QuerySource, SeriesQuery, project_check, quote
from gemini.policy.spec import PubsubMetric

RESOURCE_TYPE = "pubsub_subscription"
PREFIX = "pubsub.googleapis.com/subscription/"
SUBSCRIPTION_LABEL = "resource.labels.subscription_id"
PROJECT_LABEL = "resource.labels.project_id"
RESOURCE_TYPE_FIELD = "resource.type"

# metric -> (aligner, cross-series reducer). Backlog: mean of the period; age: its maximum.
_AGGREGATION: dict[PubsubMetric, tuple[str, str]] = {
    PubsubMetric.NUM_UNDELIVERED_MESSAGES: ("ALIGN_MEAN", "REDUCE_SUM"),
    PubsubMetric.OLDEST_UNACKED_MESSAGE_AGE: ("ALIGN_MAX", "REDUCE_MAX"),
}
LOOKBACK_SECONDS = 300  # covers the ~120 s visibility delay with room for two samples


def subscription_query(
    name: str, project: str, subscription_id: str, metric: PubsubMetric
) -> SeriesQuery:
    aligner, reducer = _AGGREGATION[metric]
    return SeriesQuery(
        name=name,
        project=project,
        filter=f"metric.type = {quote(PREFIX + metric.value)}",
        aligner=aligner,
        reducer=reducer,
        alignment_period_seconds=60,
        lookback_seconds=LOOKBACK_SECONDS,
        split=((SUBSCRIPTION_LABEL, subscription_id),),
        non_negative=True,
        checks=((RESOURCE_TYPE_FIELD, RESOURCE_TYPE), *project_check(PROJECT_LABEL, project)),
    )


class PubsubSource(QuerySource):
    """Reads `num_undelivered_messages` / `oldest_unacked_message_age` per subscription."""

    def query(self, request: MetricRequest) -> SeriesQuery:
        cfg = request.metric.source.pubsub
        if cfg is None:
            raise ValueError("not a pubsub metric")
        return subscription_query(request.metric.name, cfg.project, cfg.subscription_id, cfg.metric)
