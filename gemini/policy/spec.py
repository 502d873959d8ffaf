"""The `ScalingPolicy` spec: pydantic models at the trust boundary (manifests, CRD, HTTP).

Field names follow HPA v2 where the concept is the same. Every field has a description: it flows
into the generated CRD and `kubectl explain`. Structure is checked by pydantic; cross-field rules
(min <= max, unique names, ...) by `problems()`, so every problem is reported with its field path
in the manifest's own camelCase names. Imports no I/O library.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic.json_schema import WithJsonSchema

from gemini.errors import SpecError

API_GROUP = "autoscaling.gemini.dev"
API_VERSION = f"{API_GROUP}/v1alpha1"
KIND = "ScalingPolicy"

# HPA's defaults (kubernetes pkg/apis/autoscaling/v2/defaults.go and the controller flags).
DEFAULT_TOLERANCE = 0.1
DEFAULT_SCALE_DOWN_WINDOW_SECONDS = 300
DEFAULT_PERIOD_SECONDS = 15
MAX_PERIOD_SECONDS = 1800
MAX_WINDOW_SECONDS = 3600
MAX_REPLICAS = 2**31 - 1  # replica counts are int32 in Kubernetes (HPA's minReplicas/maxReplicas)
# how far back a metric may be read (offsetSeconds): a week covers weekly seasons
MAX_OFFSET_SECONDS = 7 * 86400

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
# The schema-side spelling of a quantity (what the CRD's pattern admits): a plain or decimal
# number with an optional exponent or SI / binary suffix. Negative targets are never valid.
QUANTITY_PATTERN = r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"
PUBSUB_SUBSCRIPTION_PATTERN = r"^projects/[^/\s]+/subscriptions/[^/\s]+$"
# Google's rule for the ID itself (a warning only: a test fixture's "s1" is still a valid path)
PUBSUB_SUBSCRIPTION_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_.~+%-]{2,254}$"
CRON_PATTERN = r"^\s*\S+(\s+\S+){4}\s*$"
# cron's nicknames (@daily, ...) are read as their five-field equivalents
CRON_MACRO_PATTERN = r"^\s*@(yearly|annually|monthly|weekly|daily|midnight|hourly)\s*$"
METRIC_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9_.:/|-]{0,251}[A-Za-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
_SUFFIX = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


def parse_quantity(raw: Any) -> float:
    """A number, or a Kubernetes quantity string ("500m", "1k", "2Gi") as HPA targets accept."""
    if isinstance(raw, bool):
        raise ValueError("must be a number or a quantity string like '500m'")
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        match = _QUANTITY.match(raw.strip())
        if match is None or match.group(2) not in _SUFFIX:
            raise ValueError(f"not a number or quantity: {raw!r}")
        try:
            value = float(match.group(1)) * _SUFFIX[match.group(2)]
        except ValueError:
            raise ValueError(f"not a number or quantity: {raw!r}") from None
    else:
        raise ValueError("must be a number or a quantity string like '500m'")
    if not math.isfinite(value):
        raise ValueError("must be finite")
    return value


# In the JSON schema (and so the CRD) a quantity is a number or a quantity string.
Quantity = Annotated[
    float,
    BeforeValidator(parse_quantity),
    WithJsonSchema(
        {"anyOf": [{"type": "number"}, {"type": "string", "pattern": QUANTITY_PATTERN}]}
    ),
]


def _admits_bool(annotation: Any) -> bool:
    return annotation is bool or any(_admits_bool(a) for a in get_args(annotation))


# what a plain number or boolean field is, for the error when a string is given for one
_SCALAR_KIND = {int: "a whole number", float: "a number", bool: "true or false"}


def _scalar_kind(field: FieldInfo) -> str | None:
    """The kind of a field that is a number or boolean and takes no string (the CRD's `integer`,
    `number`, `boolean`), else None: a quantity (parsed from a string by a BeforeValidator), a
    string, an enum, a union with any of these."""
    if any(isinstance(m, BeforeValidator) for m in field.metadata):
        return None
    kinds = [a for a in (get_args(field.annotation) or (field.annotation,)) if a is not type(None)]
    if not kinds or not all(k in _SCALAR_KIND for k in kinds):
        return None
    return _SCALAR_KIND[kinds[0]]


class Model(BaseModel):
    """Base: camelCase names, unknown fields are errors, values are immutable."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        frozen=True,
        use_enum_values=False,
        # NaN and infinities mean nothing in a policy: a NaN activationValue kept a loaded
        # workload at zero, a NaN step bound matched no value (no limit is the field left out)
        allow_inf_nan=False,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """pydantic reads true as 1 for a number, and "10" as 10; a manifest meaning a number
        never says true, and the API server refuses a string where the CRD wants an integer,
        a number or a boolean, so `gemini validate` does too (quantities are strings)."""
        if isinstance(value, bool | str) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is None:
                return value
            if isinstance(value, bool) and not _admits_bool(field.annotation):
                raise ValueError(f"must not be a boolean (got {str(value).lower()})")
            kind = _scalar_kind(field) if isinstance(value, str) else None
            if kind is not None:
                raise ValueError(f"must be {kind}, not a string (got {value!r})")
        return value


def exactly_one(model: BaseModel, names: Iterable[str], what: str) -> None:
    names = list(names)
    given = [to_camel(n) for n in names if getattr(model, n) is not None]
    if len(given) != 1:
        options = ", ".join(to_camel(n) for n in names)
        got = ", ".join(given) if given else "none"
        raise ValueError(f"{what} must set exactly one of {options} (got {got})")


# ---------------------------------------------------------------------------------------------
# Targets


class KubernetesTarget(Model):
    """A Kubernetes workload in the policy's namespace, scaled through its /scale subresource."""

    api_version: str = Field(
        "apps/v1",
        min_length=1,
        max_length=253,
        pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?v[0-9]+((alpha|beta)[0-9]+)?$",
        description="API version of the target, e.g. apps/v1 or a custom resource's group/version.",
    )
    kind: str = Field(
        "Deployment",
        min_length=1,
        max_length=63,
        pattern=r"^[A-Z][A-Za-z0-9]*$",
        description=(
            "Kind of the target: Deployment, StatefulSet, or any kind with a /scale subresource. "
            "An HPA or KEDA ScaledObject must not scale the same target."
        ),
    )
    name: str = Field(
        ...,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Name of the target in the policy's namespace.",
    )


class NativeAutoscaling(StrEnum):
    REFUSE = "Refuse"
    MANAGE_LIMITS = "ManageLimits"


class BigtableTarget(Model):
    """A Cloud Bigtable cluster whose node count is scaled, with Google's scaling guardrails."""

    project: str = Field(..., min_length=1, description="Google Cloud project ID of the instance.")
    instance: str = Field(..., min_length=1, description="Bigtable instance ID.")
    cluster: str = Field(
        ..., min_length=1, description="Bigtable cluster ID whose nodes are scaled."
    )
    storage_utilization_target: float = Field(
        0.7,
        gt=0.0,
        le=1.0,
        description=(
            "Storage guardrail: never fewer nodes than bytes used / (per-node storage limit x this "
            "fraction). Per-node limits: 5 TB SSD, 16 TB HDD. Google advises below 0.7 for "
            "latency-sensitive clusters."
        ),
    )
    max_scale_down_percent: float = Field(
        10.0,
        gt=0.0,
        le=100.0,
        description=(
            "Never remove more than this percent of nodes within scaleDownPeriodSeconds (at least "
            "one node). Google's guidance: no more than 10 % in 10 minutes."
        ),
    )
    scale_down_period_seconds: int = Field(
        600, ge=1, le=86400, description="Period over which maxScaleDownPercent applies."
    )
    min_change_interval_seconds: int = Field(
        0,
        ge=0,
        le=86400,
        description="Minimum time between two node-count changes, in either direction.",
    )
    native_autoscaling: NativeAutoscaling = Field(
        NativeAutoscaling.REFUSE,
        description=(
            "If the cluster has Bigtable's native autoscaling on: Refuse (do nothing, report "
            "TargetConflict) or ManageLimits (write the desired count as the native autoscaler's "
            "minimum instead of the node count)."
        ),
    )


class Target(Model):
    """What the policy scales: exactly one of kubernetes or bigtable."""

    kubernetes: KubernetesTarget | None = Field(
        None, description="A Kubernetes workload scaled through its /scale subresource."
    )
    bigtable: BigtableTarget | None = Field(
        None, description="A Cloud Bigtable cluster whose node count is scaled."
    )

    @model_validator(mode="after")
    def _one(self) -> Target:
        exactly_one(self, ["kubernetes", "bigtable"], "target")
        return self

    @property
    def kind(self) -> str:
        return "kubernetes" if self.kubernetes is not None else "bigtable"

    def describe(self) -> str:
        if self.kubernetes is not None:
            return f"{self.kubernetes.kind}/{self.kubernetes.name}"
        assert self.bigtable is not None
        b = self.bigtable
        return f"bigtable:{b.project}/{b.instance}/{b.cluster}"


# ---------------------------------------------------------------------------------------------
# Metric sources


class Aligner(StrEnum):
    ALIGN_NONE = "ALIGN_NONE"
    ALIGN_DELTA = "ALIGN_DELTA"
    ALIGN_RATE = "ALIGN_RATE"
    ALIGN_MEAN = "ALIGN_MEAN"
    ALIGN_MAX = "ALIGN_MAX"
    ALIGN_MIN = "ALIGN_MIN"
    ALIGN_SUM = "ALIGN_SUM"
    ALIGN_COUNT = "ALIGN_COUNT"
    ALIGN_NEXT_OLDER = "ALIGN_NEXT_OLDER"
    ALIGN_PERCENTILE_99 = "ALIGN_PERCENTILE_99"
    ALIGN_PERCENTILE_95 = "ALIGN_PERCENTILE_95"
    ALIGN_PERCENTILE_50 = "ALIGN_PERCENTILE_50"
    ALIGN_PERCENTILE_05 = "ALIGN_PERCENTILE_05"
    ALIGN_INTERPOLATE = "ALIGN_INTERPOLATE"
    ALIGN_STDDEV = "ALIGN_STDDEV"
    ALIGN_COUNT_TRUE = "ALIGN_COUNT_TRUE"
    ALIGN_COUNT_FALSE = "ALIGN_COUNT_FALSE"
    ALIGN_FRACTION_TRUE = "ALIGN_FRACTION_TRUE"
    ALIGN_PERCENT_CHANGE = "ALIGN_PERCENT_CHANGE"


class Reducer(StrEnum):
    REDUCE_NONE = "REDUCE_NONE"
    REDUCE_MEAN = "REDUCE_MEAN"
    REDUCE_MAX = "REDUCE_MAX"
    REDUCE_MIN = "REDUCE_MIN"
    REDUCE_SUM = "REDUCE_SUM"
    REDUCE_COUNT = "REDUCE_COUNT"
    REDUCE_PERCENTILE_99 = "REDUCE_PERCENTILE_99"
    REDUCE_PERCENTILE_95 = "REDUCE_PERCENTILE_95"
    REDUCE_PERCENTILE_50 = "REDUCE_PERCENTILE_50"
    REDUCE_PERCENTILE_05 = "REDUCE_PERCENTILE_05"
    REDUCE_STDDEV = "REDUCE_STDDEV"
    REDUCE_COUNT_TRUE = "REDUCE_COUNT_TRUE"
    REDUCE_COUNT_FALSE = "REDUCE_COUNT_FALSE"
    REDUCE_FRACTION_TRUE = "REDUCE_FRACTION_TRUE"


_METRIC_TYPE = re.compile(r'metric\.type\s*=\s*"([^"]+)"')


class CloudMonitoringSource(Model):
    """Any Cloud Monitoring metric, read with ListTimeSeries and reduced to one value."""

    project: str = Field(..., min_length=1, description="Project whose time series are read.")
    filter: str = Field(
        ...,
        min_length=1,
        description='Cloud Monitoring filter; must contain metric.type = "...".',
    )
    aligner: Aligner = Field(Aligner.ALIGN_MEAN, description="Per-series aligner.")
    reducer: Reducer = Field(
        Reducer.REDUCE_SUM,
        description="Cross-series reducer: how the matching series combine into one value.",
    )
    alignment_period_seconds: int = Field(
        60, ge=60, le=86400, description="Alignment period (Cloud Monitoring minimum 60)."
    )
    lookback_seconds: int = Field(
        300,
        ge=60,
        le=86400,
        description=(
            "How far back each read looks for points (at least the metric's windowSeconds plus "
            "one alignment period)."
        ),
    )
    group_by: list[str] = Field(
        default_factory=list, description="Fields to group by before reducing (rarely needed)."
    )

    @field_validator("filter")
    @classmethod
    def _has_type(cls, value: str) -> str:
        if _METRIC_TYPE.search(value) is None:
            raise ValueError('filter must contain metric.type = "<type>"')
        return value

    @property
    def metric_type(self) -> str:
        match = _METRIC_TYPE.search(self.filter)
        assert match is not None
        return match.group(1)


class PubsubMetric(StrEnum):
    NUM_UNDELIVERED_MESSAGES = "num_undelivered_messages"
    OLDEST_UNACKED_MESSAGE_AGE = "oldest_unacked_message_age"


class PubsubSource(Model):
    """A Pub/Sub subscription's backlog or oldest unacknowledged message age (Cloud Monitoring)."""

    subscription: str = Field(
        ...,
        description="Full subscription path: projects/PROJECT/subscriptions/SUBSCRIPTION.",
        json_schema_extra={"pattern": PUBSUB_SUBSCRIPTION_PATTERN},
    )
    metric: PubsubMetric = Field(
        PubsubMetric.NUM_UNDELIVERED_MESSAGES,
        description="num_undelivered_messages (backlog, messages) or oldest_unacked_message_age (seconds).",
    )

    @field_validator("subscription")
    @classmethod
    def _path(cls, value: str) -> str:
        match = re.fullmatch(r"projects/([^/\s]+)/subscriptions/([^/\s]+)", value)
        if match is None:
            raise ValueError(
                f"must be a full path projects/PROJECT/subscriptions/SUBSCRIPTION, got {value!r}"
            )
        return value

    @property
    def project(self) -> str:
        return self.subscription.split("/")[1]

    @property
    def subscription_id(self) -> str:
        return self.subscription.split("/")[3]


class BigtableMetric(StrEnum):
    CPU_LOAD = "cpu_load"
    CPU_LOAD_HOTTEST_NODE = "cpu_load_hottest_node"
    STORAGE_UTILIZATION = "storage_utilization"


class BigtableSource(Model):
    """A Bigtable cluster's CPU load or storage utilization (Cloud Monitoring)."""

    project: str = Field(..., min_length=1, description="Project of the Bigtable instance.")
    instance: str = Field(..., min_length=1, description="Bigtable instance ID.")
    cluster: str = Field(..., min_length=1, description="Bigtable cluster ID.")
    metric: BigtableMetric = Field(
        BigtableMetric.CPU_LOAD,
        description="cpu_load (fraction), cpu_load_hottest_node (fraction) or storage_utilization (fraction).",
    )


class PrometheusAuth(Model):
    """How gemini authenticates to the Prometheus HTTP API."""

    bearer_token_file: str | None = Field(
        None, description="File holding a bearer token sent as Authorization: Bearer."
    )
    google: bool = Field(
        False,
        description="Use Google Application Default Credentials (Cloud Monitoring's PromQL endpoint).",
    )


class PrometheusSource(Model):
    """A PromQL instant query against a Prometheus-compatible HTTP API."""

    server_address: str = Field(
        ...,
        pattern=r"^https?://",
        description=(
            "Base URL of the Prometheus HTTP API, e.g. http://prometheus:9090 or "
            "https://monitoring.googleapis.com/v1/projects/P/location/global/prometheus"
        ),
    )
    query: str = Field(
        ..., min_length=1, description="PromQL returning one sample (scalar or 1-element vector)."
    )
    timeout_seconds: float = Field(5.0, gt=0, le=60, description="Request deadline.")
    auth: PrometheusAuth | None = Field(None, description="Optional authentication.")


class ReplicaField(StrEnum):
    CURRENT = "Current"
    DESIRED = "Desired"


class KubernetesSource(Model):
    """The replica count of another Kubernetes workload (to follow it)."""

    api_version: str = Field("apps/v1", description="API version of the workload read.")
    kind: str = Field("Deployment", description="Kind of the workload read.")
    name: str = Field(..., min_length=1, description="Name of the workload read.")
    namespace: str | None = Field(None, description="Namespace; the policy's when left out.")
    replicas: ReplicaField = Field(
        ReplicaField.CURRENT,
        description="Current (status.replicas) or Desired (spec.replicas) replicas of that workload.",
    )


class RecordedSource(Model):
    """A recorded trace file replayed as a metric (simulator and demo)."""

    file: str = Field(..., min_length=1, description="Trace file (CSV timestamp,value or Parquet).")
    scale: float = Field(1.0, description="Multiply every value by this.")
    loop: bool = Field(
        False, description="Replay the trace in a loop, aligned to its start (demos)."
    )


class MetricSource(Model):
    """Where a metric is read: exactly one of the source kinds."""

    cloud_monitoring: CloudMonitoringSource | None = Field(
        None, description="Any Cloud Monitoring time series (ListTimeSeries)."
    )
    pubsub: PubsubSource | None = Field(
        None, description="A Pub/Sub subscription's backlog or age."
    )
    bigtable: BigtableSource | None = Field(
        None, description="A Bigtable cluster's CPU or storage."
    )
    prometheus: PrometheusSource | None = Field(
        None, description="A PromQL instant query (also Cloud Monitoring's PromQL endpoint)."
    )
    kubernetes: KubernetesSource | None = Field(
        None, description="Replicas of another Kubernetes workload."
    )
    recorded: RecordedSource | None = Field(None, description="A recorded trace file.")

    @model_validator(mode="after")
    def _one(self) -> MetricSource:
        exactly_one(
            self,
            ["cloud_monitoring", "pubsub", "bigtable", "prometheus", "kubernetes", "recorded"],
            "source",
        )
        return self

    @property
    def kind(self) -> str:
        for name in (
            "cloud_monitoring",
            "pubsub",
            "bigtable",
            "prometheus",
            "kubernetes",
            "recorded",
        ):
            if getattr(self, name) is not None:
                return to_camel(name)
        raise AssertionError("validated source has one kind")

    @property
    def config(self) -> Model:
        for name in (
            "cloud_monitoring",
            "pubsub",
            "bigtable",
            "prometheus",
            "kubernetes",
            "recorded",
        ):
            value = getattr(self, name)
            if value is not None:
                return value  # type: ignore[no-any-return]
        raise AssertionError("validated source has one kind")


# ---------------------------------------------------------------------------------------------
# Metric targets and algorithms


class TargetType(StrEnum):
    VALUE = "Value"
    AVERAGE_VALUE = "AverageValue"
    UTILIZATION = "Utilization"


class MetricTarget(Model):
    """Target tracking as in HPA v2: the target value and how the metric value is read."""

    type: TargetType = Field(
        ...,
        description=(
            "Value: desired = ceil(current x value / target.value). AverageValue: the value is a "
            "total, desired = ceil(value / target.averageValue). Utilization: the value is a "
            "fraction of capacity (0.75 = 75 %), desired = ceil(current x value x 100 / "
            "target.averageUtilization)."
        ),
    )
    value: Quantity | None = Field(
        None,
        gt=0,
        description=("Target for type Value: a number (0.7) or a quantity string ('500m', '2k')."),
    )
    average_value: Quantity | None = Field(
        None,
        gt=0,
        description=(
            "Per-replica target for type AverageValue: a number (2.5) or a quantity string "
            "('500m', '1k')."
        ),
    )
    average_utilization: int | None = Field(
        None,
        gt=0,
        le=1000,
        description="Target percent for type Utilization (70 means a value of 0.7).",
    )

    @model_validator(mode="after")
    def _matching(self) -> MetricTarget:
        wanted = {
            TargetType.VALUE: "value",
            TargetType.AVERAGE_VALUE: "average_value",
            TargetType.UTILIZATION: "average_utilization",
        }[self.type]
        others = [n for n in ("value", "average_value", "average_utilization") if n != wanted]
        extra = [to_camel(n) for n in others if getattr(self, n) is not None]
        if getattr(self, wanted) is None:
            hint = f" (got {', '.join(extra)})" if extra else ""
            raise ValueError(
                f"@{to_camel(wanted)}: type {self.type.value} needs {to_camel(wanted)}{hint}"
            )
        if extra:
            raise ValueError(
                f"@{extra[0]}: type {self.type.value} takes only {to_camel(wanted)}, "
                f"not {', '.join(extra)}"
            )
        return self

    @property
    def amount(self) -> float:
        """The target as a number in the metric's own unit (Utilization: a fraction)."""
        if self.type is TargetType.VALUE:
            assert self.value is not None
            return self.value
        if self.type is TargetType.AVERAGE_VALUE:
            assert self.average_value is not None
            return self.average_value
        assert self.average_utilization is not None
        return self.average_utilization / 100.0


class AdjustmentType(StrEnum):
    CHANGE_IN_CAPACITY = "ChangeInCapacity"
    PERCENT_CHANGE_IN_CAPACITY = "PercentChangeInCapacity"
    EXACT_CAPACITY = "ExactCapacity"


class Step(Model):
    """One value range of step scaling and its adjustment."""

    lower_bound: float | None = Field(
        None, description="Applies when value >= lowerBound (no lower limit when left out)."
    )
    upper_bound: float | None = Field(
        None, description="Applies when value < upperBound (no upper limit when left out)."
    )
    adjustment: int = Field(
        ...,
        description="Change (negative scales down), percent change, or exact capacity, per adjustmentType.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Step:
        if (
            self.lower_bound is not None
            and self.upper_bound is not None
            and self.lower_bound >= self.upper_bound
        ):
            raise ValueError("lowerBound must be below upperBound")
        return self


class StepScaling(Model):
    """Step scaling: a fixed adjustment per range of the metric value (like AWS step scaling)."""

    adjustment_type: AdjustmentType = Field(
        AdjustmentType.CHANGE_IN_CAPACITY, description="How a step's adjustment is read."
    )
    steps: list[Step] = Field(
        ...,
        min_length=1,
        max_length=20,
        description="Value ranges and their adjustments; ranges must not overlap. No match: no change.",
    )
    min_adjustment_magnitude: int = Field(
        1, ge=1, description="With PercentChangeInCapacity, change at least this many replicas."
    )

    @model_validator(mode="after")
    def _no_overlap(self) -> StepScaling:
        spans = sorted(
            (
                (-math.inf if s.lower_bound is None else s.lower_bound),
                (math.inf if s.upper_bound is None else s.upper_bound),
            )
            for s in self.steps
        )
        for (_, hi), (lo, _) in itertools.pairwise(spans):
            if lo < hi:
                raise ValueError("step ranges overlap")
        return self

    def adjustment_for(self, value: float) -> Step | None:
        for step in self.steps:
            lo = -math.inf if step.lower_bound is None else step.lower_bound
            hi = math.inf if step.upper_bound is None else step.upper_bound
            if lo <= value < hi:
                return step
        return None


class WindowFunction(StrEnum):
    LAST = "Last"
    MEAN = "Mean"
    MAX = "Max"
    MIN = "Min"


class FallbackPolicy(StrEnum):
    HOLD = "Hold"
    IGNORE = "Ignore"
    REPLICAS = "Replicas"


class Fallback(Model):
    """What to do when the metric is missing, stale or failing."""

    policy: FallbackPolicy = Field(
        FallbackPolicy.HOLD,
        description=(
            "When this metric is missing, stale or failing: Hold (HPA's rule: other metrics may "
            "scale up, nothing scales down), Ignore (decide on the other metrics alone), or "
            "Replicas (after failureThreshold consecutive failures propose `replicas`, like KEDA)."
        ),
    )
    failure_threshold: int = Field(
        3, ge=1, le=1000, description="Consecutive failed reads before Replicas applies."
    )
    replicas: int | None = Field(
        None, ge=0, le=MAX_REPLICAS, description="Capacity proposed by policy Replicas."
    )

    @model_validator(mode="after")
    def _replicas(self) -> Fallback:
        if self.policy is FallbackPolicy.REPLICAS and self.replicas is None:
            raise ValueError("policy Replicas needs replicas")
        return self


class Metric(Model):
    """One metric, its source and how it proposes a capacity."""

    name: str = Field(
        ...,
        pattern=METRIC_NAME_PATTERN,
        description=(
            "Name of this metric within the policy: letters, digits and - _ . : / |, starting "
            "and ending with a letter or digit, at most 253 characters."
        ),
    )
    source: MetricSource = Field(..., description="Where the metric is read; exactly one kind.")
    target: MetricTarget | None = Field(
        None, description="Target tracking (HPA formula). Exactly one of target or stepScaling."
    )
    step_scaling: StepScaling | None = Field(
        None, description="Step scaling on the metric value. Exactly one of target or stepScaling."
    )
    window_seconds: int = Field(
        0,
        ge=0,
        le=86400,
        description="Reduce the samples of this last span with windowFunction (0: the newest sample).",
    )
    window_function: WindowFunction = Field(
        WindowFunction.LAST, description="Last, Mean, Max or Min over windowSeconds."
    )
    max_age_seconds: int | None = Field(
        None,
        ge=1,
        le=86400,
        description=(
            "A newest sample older than this is stale and treated like a failed read. Pub/Sub "
            "metrics are up to 120 s late, so use at least 180 for them."
        ),
    )
    offset_seconds: int = Field(
        0,
        ge=0,
        le=MAX_OFFSET_SECONDS,
        description=(
            "Read the metric as it was this long ago (windowSeconds then spans the time before "
            "that): a seasonal forecast. 86400 - H with windowSeconds H and windowFunction Max "
            "proposes now what yesterday's load needed over the next H seconds, so a daily ramp "
            "is met ahead of time. Needs an AverageValue target on a total (not the kubernetes "
            "or bigtable source); use fallback Ignore so the first day, with no history, does "
            "not hold scale-down."
        ),
    )
    activation_value: float = Field(
        0.0,
        description=(
            "With minReplicas 0: the metric is active when its value is above this; the target "
            "scales from zero when any metric is active and to zero when none is."
        ),
    )
    fallback: Fallback = Field(default_factory=Fallback, description="Missing-data behaviour.")

    @model_validator(mode="after")
    def _algorithm(self) -> Metric:
        if self.target is None and self.step_scaling is None:
            raise ValueError("@target: required field is missing (or stepScaling instead)")
        exactly_one(self, ["target", "step_scaling"], "metric")
        if self.offset_seconds:
            if self.target is None or self.target.type is not TargetType.AVERAGE_VALUE:
                raise ValueError(
                    "@offsetSeconds: needs an AverageValue target (a utilization or value read "
                    "from another time is relative to that time's replicas)"
                )
            if self.source.kind == "kubernetes":
                raise ValueError(
                    "@offsetSeconds: the kubernetes source reads only the current replica count"
                )
            if self.source.kind == "bigtable":
                raise ValueError(
                    "@offsetSeconds: the bigtable source reads fractions of the nodes there were "
                    "then; read a total (e.g. a request rate) for a forecast"
                )
        return self


# ---------------------------------------------------------------------------------------------
# Behavior (HPA v2)


class PolicyType(StrEnum):
    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(StrEnum):
    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class RatePolicy(Model):
    """A rate limit: at most `value` Pods or Percent of change per periodSeconds."""

    type: PolicyType = Field(
        ...,
        description="Pods (a number of replicas) or Percent (of the replicas at the period's start).",
    )
    value: int = Field(..., gt=0, description="Replicas or percent allowed to change per period.")
    period_seconds: int = Field(
        ..., gt=0, le=MAX_PERIOD_SECONDS, description="Length of the period, 1 to 1800 seconds."
    )


class ScalingRules(Model):
    """Scaling rules for one direction (HPA v2 HPAScalingRules, plus a cooldown)."""

    stabilization_window_seconds: int | None = Field(
        None,
        ge=0,
        le=MAX_WINDOW_SECONDS,
        description="Window of past recommendations considered (default 0 up, 300 down).",
    )
    select_policy: SelectPolicy = Field(
        SelectPolicy.MAX,
        description="Max (the policy allowing most change), Min (least), or Disabled (no scaling in this direction).",
    )
    policies: list[RatePolicy] | None = Field(
        None,
        max_length=10,
        description="Rate limits; default up: max(100 %, 4 pods) per 15 s, down: 100 % per 15 s.",
    )
    tolerance: Quantity | None = Field(
        None,
        ge=0.0,
        le=10.0,
        description=(
            "No change while |value/target - 1| <= tolerance (default 0.1); a number (0.05) or "
            "a quantity string ('50m') as in HPA."
        ),
    )
    cooldown_seconds: int = Field(
        0,
        ge=0,
        le=86400,
        description=(
            "gemini: after a scale-up, no further scale-up for this long (scaleUp); after any "
            "scale event, no scale-down for this long (scaleDown)."
        ),
    )


class Behavior(Model):
    """How fast capacity may change, per direction (HPA v2 behavior)."""

    scale_up: ScalingRules | None = Field(None, description="Rules for scaling up.")
    scale_down: ScalingRules | None = Field(None, description="Rules for scaling down.")


# ---------------------------------------------------------------------------------------------
# Schedules, scale to zero, mode


class Schedule(Model):
    """A recurring window (cron start + duration) that replaces minReplicas and/or maxReplicas."""

    name: str = Field(..., min_length=1, max_length=63, description="Name of this schedule.")
    cron: str = Field(
        ...,
        description=(
            "Start times, five-field cron (minute hour day-of-month month day-of-week) in "
            "timeZone, e.g. '30 8 * * mon-fri' for weekdays at 08:30, or one of @hourly, "
            "@daily (@midnight), @weekly, @monthly, @yearly (@annually)."
        ),
        json_schema_extra={"pattern": f"({CRON_PATTERN})|({CRON_MACRO_PATTERN})"},
    )
    time_zone: str = Field(
        "UTC", description="IANA time zone of the cron expression, e.g. Asia/Tokyo."
    )
    duration_seconds: int = Field(
        ..., gt=0, le=7 * 86400, description="How long the schedule stays active after each start."
    )
    min_replicas: int | None = Field(
        None, ge=0, le=MAX_REPLICAS, description="Minimum while active."
    )
    max_replicas: int | None = Field(
        None, ge=1, le=MAX_REPLICAS, description="Maximum while active."
    )

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Paris)"
            ) from None
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from gemini.policy import schedule

        schedule.check_cron(value)
        return value

    @model_validator(mode="after")
    def _some_bound(self) -> Schedule:
        if self.min_replicas is None and self.max_replicas is None:
            raise ValueError("a schedule sets minReplicas, maxReplicas or both")
        if (
            self.min_replicas is not None
            and self.max_replicas is not None
            and self.min_replicas > self.max_replicas
        ):
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


class ScaleToZero(Model):
    """Scale-to-zero settings; they apply when minReplicas is 0."""

    cooldown_seconds: int = Field(
        300,
        ge=0,
        le=86400,
        description="With minReplicas 0: scale to zero only after no metric was active for this long.",
    )


class Mode(StrEnum):
    ACTIVE = "Active"
    SHADOW = "Shadow"
    PAUSED = "Paused"


class Spec(Model):
    """The desired scaling behaviour of one target."""

    target: Target = Field(
        ..., description="What is scaled: exactly one of kubernetes or bigtable."
    )
    min_replicas: int = Field(
        1,
        ge=0,
        le=MAX_REPLICAS,
        description="Lowest capacity (replicas or nodes). 0 enables scale to zero.",
    )
    max_replicas: int = Field(
        ..., ge=1, le=MAX_REPLICAS, description="Highest capacity (replicas or nodes)."
    )
    metrics: list[Metric] = Field(
        ..., min_length=1, max_length=20, description="Metrics; the highest proposal wins."
    )
    behavior: Behavior | None = Field(None, description="HPA v2 behavior, plus cooldowns.")
    interval_seconds: int = Field(
        15, ge=1, le=3600, description="Evaluate every this many seconds (HPA: 15)."
    )
    mode: Mode = Field(
        Mode.ACTIVE,
        description="Active applies decisions, Shadow records them only, Paused does nothing but report.",
    )
    schedules: list[Schedule] = Field(
        default_factory=list,
        max_length=50,
        description="Cron windows that change min/max; when several are active the highest values win.",
    )
    scale_to_zero: ScaleToZero = Field(
        default_factory=ScaleToZero, description="Scale-to-zero settings (minReplicas 0)."
    )


class ObjectMeta(BaseModel):
    """Standard Kubernetes object metadata (only the fields gemini reads)."""

    model_config = ConfigDict(
        extra="ignore", populate_by_name=True, alias_generator=to_camel, frozen=True
    )

    name: str = Field(
        ...,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Name of the policy (a DNS subdomain: lowercase letters, digits, - and .).",
    )
    namespace: str = Field(
        "default",
        min_length=1,
        max_length=63,
        description="Namespace of the policy and its target.",
    )
    generation: int | None = Field(None, description="Set by the API server.")
    resource_version: str | None = Field(None, description="Set by the API server.")
    uid: str | None = Field(None, description="Set by the API server.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations.")


class ScalingPolicy(Model):
    """ScalingPolicy scales one target (a Kubernetes /scale workload or a Bigtable cluster) on
    custom metrics, with HPA v2 semantics where the concept is the same."""

    api_version: Literal["autoscaling.gemini.dev/v1alpha1"] = Field(
        "autoscaling.gemini.dev/v1alpha1", description="autoscaling.gemini.dev/v1alpha1"
    )
    kind: Literal["ScalingPolicy"] = Field("ScalingPolicy", description="ScalingPolicy")
    metadata: ObjectMeta = Field(..., description="Standard object metadata.")
    spec: Spec = Field(..., description="The desired scaling behaviour.")
    status: dict[str, Any] | None = Field(
        None,
        description=(
            "Written by the controller: observed generation, current and desired capacity, "
            "conditions, the last decision and the serialized policy state."
        ),
    )

    @property
    def key(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"


# ---------------------------------------------------------------------------------------------
# Parsing with problems named by field path


def format_path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside a field annotation (`X | None`, `list[X]`, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in models_in(arg)]


def _model_at(loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model whose fields live at `loc` (manifest names), or None if it cannot be told."""
    model: type[BaseModel] = ScalingPolicy
    for part in loc:
        if isinstance(part, int):
            continue
        fields = {(f.alias or name): f for name, f in model.model_fields.items()}
        field = fields.get(part)
        if field is None:
            return None
        inner = models_in(field.annotation)
        if len(inner) != 1:
            return None
        model = inner[0]
    return model


def _unknown_field(loc: Sequence[int | str]) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return "unknown field"
    known = sorted((f.alias or name) for name, f in model.model_fields.items())
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean {close[0]}?"
    return f"unknown field; known fields here: {', '.join(known)}"


def _shown(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 80 else repr(value[:77] + "...")
    return None


def _message(err: dict[str, Any]) -> str:
    """A pydantic error as one short sentence, with the offending value where it helps."""
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return _unknown_field(tuple(err.get("loc", ())))
    if kind == "missing":
        return "required field is missing"
    msg = str(err.get("msg", "invalid"))
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        msg = "must be a mapping"
    elif kind == "list_type":
        msg = "must be a list"
    msg = msg.replace("Input should be", "must be").replace("String should", "must")
    msg = msg.replace("List should", "must")
    got = _shown(err.get("input"))
    if got is not None:
        msg += f" (got {got})"
    return msg


# Which target types fit a source's value: a total can be shared per replica (AverageValue); a
# fraction of capacity is a Utilization; an age is a plain Value. Per source: the types that fit,
# the types that are errors (the formula cannot mean anything), and why. Any other type is
# evaluable (HPA and KEDA users write it: KEDA's default metricType is AverageValue) but likely
# not what the user meant: a warning.
_TYPES_BY_SOURCE: dict[str, tuple[frozenset[TargetType], frozenset[TargetType], str]] = {
    "pubsub:num_undelivered_messages": (
        frozenset({TargetType.AVERAGE_VALUE, TargetType.VALUE}),
        frozenset({TargetType.UTILIZATION}),
        "a Pub/Sub backlog is a total number of messages, not a fraction of capacity: use "
        "AverageValue (messages per replica) or Value",
    ),
    "pubsub:oldest_unacked_message_age": (
        frozenset({TargetType.VALUE}),
        frozenset({TargetType.UTILIZATION}),
        "the oldest unacked message age (seconds) is not shared among replicas: Value tracks it "
        "against the current count; AverageValue (KEDA's default) asks for ceil(age / "
        "averageValue) replicas whatever the current count",
    ),
    "bigtable": (
        frozenset({TargetType.UTILIZATION, TargetType.VALUE}),
        frozenset(),
        "Bigtable CPU load and storage utilization are already per-node fractions: Utilization "
        "(averageUtilization in percent) or Value track them; AverageValue reads them as a "
        "cluster total and asks for ceil(value / averageValue) nodes whatever the current count",
    ),
    "kubernetes": (
        frozenset({TargetType.AVERAGE_VALUE, TargetType.VALUE}),
        frozenset(),
        "a replica count is a total, not a fraction of capacity: AverageValue (that workload's "
        "replicas per replica of this target) or Value fit it",
    ),
}


def _type_fit(metric: Metric) -> tuple[bool, str] | None:
    """(is it an error, message) when the metric's target type does not fit its source."""
    if metric.target is None:
        return None
    rule = _TYPES_BY_SOURCE.get(_source_key(metric.source))
    if rule is None or metric.target.type in rule[0]:
        return None
    _, errors, why = rule
    return metric.target.type in errors, f"{metric.target.type.value} does not fit: {why}"


def _source_key(source: MetricSource) -> str:
    if source.pubsub is not None:
        return f"pubsub:{source.pubsub.metric.value}"
    return source.kind


def _metric_problems(policy: ScalingPolicy, i: int, metric: Metric) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    spec = policy.spec
    where = f"spec.metrics[{i}]"
    fallback = metric.fallback
    if (
        fallback.policy is FallbackPolicy.REPLICAS
        and fallback.replicas is not None
        and fallback.replicas > spec.max_replicas
    ):
        out.append(
            (
                f"{where}.fallback.replicas",
                f"{fallback.replicas} exceeds maxReplicas {spec.max_replicas}",
            )
        )
    fit = _type_fit(metric)
    if fit is not None and fit[0]:
        out.append((f"{where}.target.type", fit[1]))
    follow, own = metric.source.kubernetes, spec.target.kubernetes
    if (
        follow is not None
        and own is not None
        and (follow.api_version, follow.kind, follow.name) == (own.api_version, own.kind, own.name)
        and (follow.namespace or policy.metadata.namespace) == policy.metadata.namespace
    ):
        out.append(
            (
                f"{where}.source.kubernetes",
                f"reads the replicas of the policy's own target {own.kind}/{own.name} "
                "(a feedback loop)",
            )
        )
    return out


def problems(policy: ScalingPolicy) -> list[tuple[str, str]]:
    """Cross-field rules pydantic's per-field checks cannot express."""
    out: list[tuple[str, str]] = []
    spec = policy.spec
    if spec.min_replicas > spec.max_replicas:
        out.append(
            (
                "spec.minReplicas",
                f"minReplicas {spec.min_replicas} exceeds maxReplicas {spec.max_replicas}",
            )
        )
    seen: dict[str, int] = {}
    for i, metric in enumerate(spec.metrics):
        if metric.name in seen:
            out.append(
                (
                    f"spec.metrics[{i}].name",
                    f"duplicate metric name {metric.name!r} (also metrics[{seen[metric.name]}])",
                )
            )
        else:
            seen[metric.name] = i
        out.extend(_metric_problems(policy, i, metric))
    names: dict[str, int] = {}
    for i, sched in enumerate(spec.schedules):
        if sched.name in names:
            out.append(
                (
                    f"spec.schedules[{i}].name",
                    f"duplicate schedule name {sched.name!r} (also schedules[{names[sched.name]}])",
                )
            )
        else:
            names[sched.name] = i
    if spec.target.bigtable is not None:
        if spec.min_replicas < 1:
            out.append(("spec.minReplicas", "a Bigtable cluster has at least 1 node"))
        for i, sched in enumerate(spec.schedules):
            if sched.min_replicas is not None and sched.min_replicas < 1:
                out.append(
                    (f"spec.schedules[{i}].minReplicas", "a Bigtable cluster has at least 1 node")
                )
    down = spec.behavior.scale_down if spec.behavior is not None else None
    for j, rate in enumerate((down.policies or []) if down is not None else []):
        if rate.type is PolicyType.PERCENT and rate.value > 100:
            out.append(
                (
                    f"spec.behavior.scaleDown.policies[{j}].value",
                    f"a scale-down Percent above 100 is meaningless (got {rate.value})",
                )
            )
    return out


def policy_warnings(policy: ScalingPolicy) -> list[tuple[str, str]]:
    """What is valid and evaluable but probably not what the user meant (field path, message).
    `gemini validate` prints these without failing; the controller ignores them."""
    out: list[tuple[str, str]] = []
    spec = policy.spec
    for i, metric in enumerate(spec.metrics):
        fit = _type_fit(metric)
        if fit is not None and not fit[0]:
            out.append((f"spec.metrics[{i}].target.type", fit[1]))
        pubsub = metric.source.pubsub
        if pubsub is not None and not re.match(
            PUBSUB_SUBSCRIPTION_ID_PATTERN, pubsub.subscription_id
        ):
            out.append(
                (
                    f"spec.metrics[{i}].source.pubsub.subscription",
                    f"Pub/Sub subscription IDs start with a letter and are 3-255 letters, digits "
                    f"or - _ . ~ + % (got {pubsub.subscription_id!r})",
                )
            )
    return out


def _relocated(path: str, message: str) -> tuple[str, str]:
    """A model validator names the field it blames as "@field: message"; the problem is then
    reported at that field's path rather than the model's."""
    if message.startswith("@"):
        field, sep, rest = message[1:].partition(": ")
        if sep:
            return (f"{path}.{field}" if path else field), rest
    return path, message


def parse_policy(doc: Any) -> ScalingPolicy:
    """Validate one manifest (a dict). Raises SpecError listing every problem by field path."""
    if not isinstance(doc, dict):
        got = {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
            type(doc), type(doc).__name__
        )
        message = f"a manifest must be a mapping (got {got})"
        raise SpecError(message, [("", message)])
    try:
        policy = ScalingPolicy.model_validate(doc)
    except ValidationError as exc:
        found = [_relocated(format_path(e["loc"]), _message(dict(e))) for e in exc.errors()]
        raise SpecError("; ".join(f"{p}: {m}" for p, m in found), found) from None
    issues = problems(policy)
    if issues:
        raise SpecError("; ".join(f"{p}: {m}" for p, m in issues), issues)
    return policy


def policy_name(doc: Any) -> str:
    """Best-effort name of a manifest for error lines, even when it is invalid."""
    if isinstance(doc, dict):
        meta = doc.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            return str(meta["name"])
    return "<unnamed>"
