"""The Cloud Bigtable scaler: a cluster's node count through the instance-admin API.

Owns reading a cluster (serve_nodes, storage type, state, native autoscaling), starting resizes
with `PartialUpdateCluster` and tracking their long-running operations (a cluster with a resize in
flight is *busy*; changes never stack), and the Bigtable guardrails as hard limits: at least one
node, the storage floor, and the scale-down step per period (from this scaler's own memory of the
changes it made). Uses the real `google-cloud-bigtable` admin client.

Endpoints: `GEMINI_BIGTABLE_ADMIN_ENDPOINT=host:port` (else `BIGTABLE_EMULATOR_HOST`) selects a
plaintext channel with anonymous credentials; otherwise the client's defaults (Application Default
Credentials, bigtableadmin.googleapis.com).

Must not import `gemini.metrics`: bytes used come from an injected `storage_reader` callable.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.cloud.bigtable_admin_v2 import BigtableInstanceAdminClient
from google.cloud.bigtable_admin_v2.types import common, instance
from google.longrunning import operations_pb2
from google.protobuf import field_mask_pb2

from gemini.errors import ScaleError, ScaleRefused, TargetNotFound
from gemini.policy.decision import Capacity, Reason
from gemini.policy.spec import BigtableTarget, NativeAutoscaling
from gemini.scalers import ApplyResult, ApplyStatus, TargetRef

ENDPOINT_ENV = "GEMINI_BIGTABLE_ADMIN_ENDPOINT"
EMULATOR_ENV = "BIGTABLE_EMULATOR_HOST"

TIB = 2**40
# Per-node storage limits. Google's docs say "5 TB" (SSD) and "16 TB" (HDD); the native
# autoscaler's storage target tops out at 5,120 GiB (SSD) and 16,384 GiB (HDD) per node, i.e. the
# limits are binary terabytes (TiB). We use those so our floor matches Bigtable's own arithmetic.
NODE_STORAGE_LIMIT_BYTES = {"SSD": 5 * TIB, "HDD": 16 * TIB}

AUTOSCALING = "cluster_config.cluster_autoscaling_config"
MIN_NODES_PATH = f"{AUTOSCALING}.autoscaling_limits.min_serve_nodes"
MAX_NODES_PATH = f"{AUTOSCALING}.autoscaling_limits.max_serve_nodes"
MAX_OVER_MIN = 10  # Bigtable: max_serve_nodes <= 10 x min_serve_nodes

UPDATE_PERMISSION = "bigtable.clusters.update"
GET_PERMISSION = "bigtable.clusters.get"
ADMIN_ROLE = "roles/bigtable.admin"


class Why:
    """Reason codes of this scaler (stable CamelCase)."""

    STORAGE_FLOOR = "StorageFloor"
    MIN_ONE_NODE = "MinimumOneNode"
    SCALE_DOWN_LIMIT = Reason.BIGTABLE_SCALE_DOWN_LIMIT.value
    NATIVE_AUTOSCALING_ON = "NativeAutoscalingOn"
    OPERATION_FAILED = "OperationFailed"
    OPERATION_RUNNING = Reason.TARGET_BUSY.value
    EXTERNAL_RESIZE = "ExternalResize"
    RESIZED_EXTERNALLY = "ResizedExternally"
    RESIZE_STARTED = "ResizeStarted"
    LIMITS_UPDATED = "NativeMinimumUpdated"
    UNCHANGED = "AlreadyAtDesired"
    PERMISSION_DENIED = "PermissionDenied"
    QUOTA_EXCEEDED = "NodeQuotaExceeded"
    FAILED_PRECONDITION = "FailedPrecondition"
    INVALID_ARGUMENT = "InvalidArgument"
    NOT_FOUND = "TargetNotFound"
    UNAVAILABLE = "BigtableUnavailable"
    API_ERROR = "BigtableError"
    STORAGE_UNKNOWN = "StorageUnknown"


StorageReader = Callable[[TargetRef], "float | None"]


@dataclass(frozen=True, slots=True)
class _Pending:
    operation: str
    requested: int
    previous: int
    started_at: datetime
    limits: bool  # a native-autoscaling minimum, not serve_nodes


@dataclass(frozen=True, slots=True)
class _Change:
    at: datetime
    before: int
    after: int


@dataclass
class _Memory:
    """What this scaler remembers about one cluster."""

    pending: _Pending | None = None
    changes: list[_Change] = field(default_factory=list)
    failure: str | None = None  # a finished operation's error, reported once
    last_seen: int | None = None  # serve_nodes at our last read (to notice outside changes)


@dataclass(frozen=True, slots=True)
class _Cluster:
    name: str
    serve_nodes: int
    storage: str
    state: str
    native: tuple[int, int] | None  # (min, max) when native autoscaling is on
    native_cpu: int | None
    native_storage_gib: int | None


def admin_client_for(endpoint: str) -> BigtableInstanceAdminClient:
    """The admin client on a plaintext channel to `host:port` (local servers, emulators); no
    credentials are sent."""
    import grpc
    from google.cloud.bigtable_admin_v2.services.bigtable_instance_admin.transports import (
        BigtableInstanceAdminGrpcTransport,
    )

    channel = grpc.insecure_channel(endpoint)
    return BigtableInstanceAdminClient(
        transport=BigtableInstanceAdminGrpcTransport(channel=channel)
    )


def admin_client_from_env() -> BigtableInstanceAdminClient:
    """The admin client, honouring the endpoint overrides (see the module docstring)."""
    endpoint = os.environ.get(ENDPOINT_ENV) or os.environ.get(EMULATOR_ENV)
    if endpoint:
        return admin_client_for(endpoint)
    return BigtableInstanceAdminClient()


def storage_floor(bytes_used: float, storage: str, utilization_target: float) -> int:
    """Fewest nodes that hold `bytes_used` at `utilization_target` of the per-node limit (>= 1)."""
    limit = NODE_STORAGE_LIMIT_BYTES.get(storage, NODE_STORAGE_LIMIT_BYTES["SSD"])
    if bytes_used <= 0 or not math.isfinite(bytes_used):
        return 1
    return max(1, math.ceil(bytes_used / (limit * utilization_target) - 1e-9))


def scale_down_floor(
    current: int, changes: list[_Change], percent: float, period: timedelta, now: datetime
) -> int:
    """Lowest node count this scaler may go to now: within any `period` it removes at most
    `percent` of the largest size the cluster had in that period (at least one node)."""
    recent = [c for c in changes if now - c.at < period]
    peak = max([current, *(c.before for c in recent)])
    allowed = max(1, int(peak * percent / 100.0 + 1e-9))
    removed = sum(c.before - c.after for c in recent if c.after < c.before)
    return max(1, current - max(0, allowed - removed))


def _spec(ref: TargetRef) -> BigtableTarget:
    bt = ref.target.bigtable
    if bt is None:
        raise ScaleRefused(f"{ref.policy}: target is not a Bigtable cluster", "WrongTargetKind")
    return bt


def cluster_name(bt: BigtableTarget) -> str:
    return f"projects/{bt.project}/instances/{bt.instance}/clusters/{bt.cluster}"


class BigtableScaler:
    """Scales Cloud Bigtable cluster nodes. Thread-safe; keeps per-cluster memory in process."""

    def __init__(
        self,
        admin_client: BigtableInstanceAdminClient | None = None,
        storage_reader: StorageReader | None = None,
        *,
        timeout_seconds: float = 10.0,
        retry_deadline_seconds: float = 5.0,
    ) -> None:
        self._client = admin_client if admin_client is not None else admin_client_from_env()
        self._storage_reader = storage_reader
        self._timeout = timeout_seconds
        self._retry = gretry.Retry(
            initial=0.1,
            maximum=1.0,
            multiplier=2.0,
            predicate=gretry.if_exception_type(gexc.ServiceUnavailable, gexc.DeadlineExceeded),
            timeout=retry_deadline_seconds,
        )
        self._memory: dict[str, _Memory] = {}
        self._lock = threading.RLock()

    # -- reads ----------------------------------------------------------------------------------

    def capacity(self, ref: TargetRef, now: datetime) -> Capacity:
        bt = _spec(ref)
        name = cluster_name(bt)
        with self._lock:
            mem = self._memory.setdefault(name, _Memory())
            reasons: list[str] = []
            detail: dict[str, Any] = {"cluster": name}
            busy = self._poll(mem, detail)  # before reading: a finished resize is not RESIZING
            cluster = self._read(name, GET_PERMISSION)
            detail["serveNodes"] = cluster.serve_nodes
            detail["storageType"] = cluster.storage
            detail["state"] = cluster.state
            if cluster.native is not None:
                detail["nativeAutoscaling"] = {
                    "minServeNodes": cluster.native[0],
                    "maxServeNodes": cluster.native[1],
                    "cpuUtilizationPercent": cluster.native_cpu,
                    "storageUtilizationGibPerNode": cluster.native_storage_gib,
                }
            if mem.failure is not None:
                reasons.append(Why.OPERATION_FAILED)
                detail["lastOperationError"] = mem.failure
                mem.failure = None
            if cluster.state == "RESIZING" and not busy:
                busy = True
                reasons.append(Why.EXTERNAL_RESIZE)
                detail["resizing"] = "the cluster is being resized by someone else"
            elif (
                not busy
                and cluster.native is None
                and mem.last_seen is not None
                and mem.last_seen != cluster.serve_nodes
            ):
                reasons.append(Why.RESIZED_EXTERNALLY)
                detail["resizedExternally"] = f"{mem.last_seen} -> {cluster.serve_nodes} nodes"
            if not busy:
                mem.last_seen = cluster.serve_nodes
            floor, floor_reason = self._floor(ref, bt, cluster, detail)
            blocked = None
            if cluster.native is not None and bt.native_autoscaling is NativeAutoscaling.REFUSE:
                blocked = Why.NATIVE_AUTOSCALING_ON
            return Capacity(
                current=cluster.serve_nodes,
                ready=cluster.serve_nodes,
                floor=floor,
                floor_reason=floor_reason,
                busy=busy,
                blocked=blocked,
                detail=detail,
                reasons=tuple(reasons),
            )

    # -- writes ---------------------------------------------------------------------------------

    def apply(self, ref: TargetRef, desired: int, now: datetime) -> ApplyResult:
        bt = _spec(ref)
        name = cluster_name(bt)
        with self._lock:
            mem = self._memory.setdefault(name, _Memory())
            detail: dict[str, Any] = {}
            try:
                busy = self._poll(mem, detail)
                if busy and mem.pending is not None:
                    return ApplyResult(
                        ApplyStatus.BUSY,
                        mem.pending.requested,
                        Why.OPERATION_RUNNING,
                        f"resize to {mem.pending.requested} nodes still running "
                        f"({mem.pending.operation}); nothing sent",
                    )
                cluster = self._read(name, GET_PERMISSION)
            except ScaleError as exc:
                return ApplyResult(
                    _status_for(exc.reason), mem.last_seen or 0, exc.reason, str(exc)
                )
            failed_before = mem.failure
            mem.failure = None
            if cluster.state == "RESIZING":
                return ApplyResult(
                    ApplyStatus.BUSY,
                    cluster.serve_nodes,
                    Why.EXTERNAL_RESIZE,
                    "the cluster is being resized by someone else; nothing sent",
                )
            if cluster.native is not None and bt.native_autoscaling is NativeAutoscaling.REFUSE:
                return ApplyResult(
                    ApplyStatus.REFUSED,
                    cluster.serve_nodes,
                    Why.NATIVE_AUTOSCALING_ON,
                    f"native autoscaling is on for {name} (min {cluster.native[0]}, max "
                    f"{cluster.native[1]}); set target.bigtable.nativeAutoscaling: ManageLimits "
                    "to manage its minimum, or turn it off",
                )
            target, clip = self._limit(ref, bt, cluster, mem, desired, now)
            note = f"; the previous resize failed: {failed_before}" if failed_before else ""
            if cluster.native is not None:
                return self._apply_limits(name, cluster, mem, target, clip, now, note)
            if target == cluster.serve_nodes:
                return ApplyResult(
                    ApplyStatus.UNCHANGED,
                    cluster.serve_nodes,
                    clip or Why.UNCHANGED,
                    f"cluster already has {cluster.serve_nodes} nodes{note}",
                )
            request = instance.Cluster(name=name, serve_nodes=target)
            mask = field_mask_pb2.FieldMask(paths=["serve_nodes"])
            return self._start(name, cluster, mem, request, mask, target, False, clip, now, note)

    # -- internals ------------------------------------------------------------------------------

    def _apply_limits(
        self,
        name: str,
        cluster: _Cluster,
        mem: _Memory,
        target: int,
        clip: str | None,
        now: datetime,
        note: str,
    ) -> ApplyResult:
        """ManageLimits: write `target` as the native autoscaler's minimum (raising the maximum
        when it would fall below, lowering it when it would exceed 10 x the minimum)."""
        assert cluster.native is not None
        low, high = cluster.native
        if target == low:
            return ApplyResult(
                ApplyStatus.UNCHANGED,
                cluster.serve_nodes,
                clip or Why.UNCHANGED,
                f"native autoscaling minimum is already {low}{note}",
            )
        new_high = min(max(high, target), MAX_OVER_MIN * target)
        paths = [MIN_NODES_PATH] + ([MAX_NODES_PATH] if new_high != high else [])
        request = instance.Cluster(
            name=name,
            cluster_config=instance.Cluster.ClusterConfig(
                cluster_autoscaling_config=instance.Cluster.ClusterAutoscalingConfig(
                    autoscaling_limits=instance.AutoscalingLimits(
                        min_serve_nodes=target, max_serve_nodes=new_high
                    )
                )
            ),
        )
        mask = field_mask_pb2.FieldMask(paths=paths)
        return self._start(name, cluster, mem, request, mask, target, True, clip, now, note)

    def _start(
        self,
        name: str,
        cluster: _Cluster,
        mem: _Memory,
        request: instance.Cluster,
        mask: field_mask_pb2.FieldMask,
        target: int,
        limits: bool,
        clip: str | None,
        now: datetime,
        note: str,
    ) -> ApplyResult:
        try:
            future = self._client.partial_update_cluster(
                cluster=request, update_mask=mask, retry=None, timeout=self._timeout
            )
        except gexc.GoogleAPICallError as exc:
            reason, message = _explain(exc, name, UPDATE_PERMISSION)
            return ApplyResult(_status_for(reason), cluster.serve_nodes, reason, message + note)
        op_name = future.operation.name
        before = cluster.native[0] if limits and cluster.native else cluster.serve_nodes
        mem.pending = _Pending(op_name, target, before, now, limits)
        mem.changes.append(_Change(now, before, target))
        what = "native autoscaling minimum" if limits else "serve_nodes"
        if future.operation.done:
            self._poll(mem, {})
        return ApplyResult(
            ApplyStatus.APPLIED,
            target,
            clip or (Why.LIMITS_UPDATED if limits else Why.RESIZE_STARTED),
            f"{what} {before} -> {target} ({op_name}){note}",
        )

    def _limit(
        self,
        ref: TargetRef,
        bt: BigtableTarget,
        cluster: _Cluster,
        mem: _Memory,
        desired: int,
        now: datetime,
    ) -> tuple[int, str | None]:
        """Hard limits: >= 1 node, >= storage floor, scale-down step per period."""
        keep = timedelta(seconds=bt.scale_down_period_seconds)
        mem.changes = [c for c in mem.changes if now - c.at < keep]  # bounded memory
        target, clip = desired, None
        if target < 1:
            target, clip = 1, Why.MIN_ONE_NODE
        floor, floor_reason = self._floor(ref, bt, cluster, {})
        if target < floor:
            target, clip = floor, floor_reason
        base = cluster.native[0] if cluster.native is not None else cluster.serve_nodes
        if target < base:
            step_floor = scale_down_floor(base, mem.changes, bt.max_scale_down_percent, keep, now)
            if target < step_floor:
                target, clip = step_floor, Why.SCALE_DOWN_LIMIT
        return target, clip

    def _floor(
        self, ref: TargetRef, bt: BigtableTarget, cluster: _Cluster, detail: dict[str, Any]
    ) -> tuple[int, str]:
        if self._storage_reader is None:
            return 1, Why.MIN_ONE_NODE
        try:
            used = self._storage_reader(ref)
        except Exception as exc:  # the reader is the shell's; its failure only loses the floor
            detail["storageError"] = f"{type(exc).__name__}: {exc}"
            used = None
        if used is None:
            detail.setdefault("storageError", "bytes used unknown")
            return 1, Why.MIN_ONE_NODE
        floor = storage_floor(used, cluster.storage, bt.storage_utilization_target)
        detail["bytesUsed"] = used
        detail["storageFloor"] = floor
        return floor, Why.STORAGE_FLOOR

    def _read(self, name: str, permission: str) -> _Cluster:
        try:
            raw = self._client.get_cluster(name=name, retry=self._retry, timeout=self._timeout)
        except gexc.GoogleAPICallError as exc:
            reason, message = _explain(exc, name, permission)
            if reason == Why.NOT_FOUND:
                raise TargetNotFound(message, reason) from None
            if reason == Why.PERMISSION_DENIED:
                raise ScaleRefused(message, reason) from None
            raise ScaleError(message, reason) from None
        except gexc.RetryError as exc:
            raise ScaleError(
                f"{name}: Bigtable admin API unavailable: {exc}", Why.UNAVAILABLE
            ) from None
        return _cluster(raw)

    def _poll(self, mem: _Memory, detail: dict[str, Any]) -> bool:
        """Poll our running operation (one GetOperation, non-blocking). True while it runs."""
        pending = mem.pending
        if pending is None:
            return False
        detail["operation"] = pending.operation
        detail["operationTarget"] = pending.requested
        try:
            op: operations_pb2.Operation = self._client.transport.operations_client.get_operation(
                pending.operation, retry=None, timeout=self._timeout
            )
        except gexc.NotFound:
            mem.pending = None  # expired or unknown: the cluster's state tells the rest
            return False
        except gexc.GoogleAPICallError as exc:
            detail["operationPollError"] = f"{exc.code}: {exc.message}"
            return True  # unknown: assume still running rather than stacking a second resize
        if not op.done:
            return True
        mem.pending = None
        if op.HasField("error"):
            mem.failure = (
                f"resize {pending.previous} -> {pending.requested} failed "
                f"({_code_name(op.error.code)}): {op.error.message}"
            )
            mem.changes = [
                c
                for c in mem.changes
                if not (c.at == pending.started_at and c.after == pending.requested)
            ]
            detail["lastOperationError"] = mem.failure
        elif not pending.limits:
            mem.last_seen = pending.requested
        return False


def _cluster(raw: instance.Cluster) -> _Cluster:
    native: tuple[int, int] | None = None
    cpu: int | None = None
    gib: int | None = None
    if "cluster_config" in raw and "cluster_autoscaling_config" in raw.cluster_config:
        auto = raw.cluster_config.cluster_autoscaling_config
        limits = auto.autoscaling_limits
        if limits.max_serve_nodes > 0:
            native = (limits.min_serve_nodes, limits.max_serve_nodes)
            cpu = auto.autoscaling_targets.cpu_utilization_percent or None
            gib = auto.autoscaling_targets.storage_utilization_gib_per_node or None
    storage = common.StorageType(raw.default_storage_type).name
    if storage not in NODE_STORAGE_LIMIT_BYTES:
        storage = "SSD"
    return _Cluster(
        name=raw.name,
        serve_nodes=int(raw.serve_nodes),
        storage=storage,
        state=instance.Cluster.State(raw.state).name,
        native=native,
        native_cpu=cpu,
        native_storage_gib=gib,
    )


def _code_name(code: int) -> str:
    import grpc

    for status in grpc.StatusCode:
        if status.value[0] == code:
            return str(status.name)
    return str(code)


def _explain(exc: gexc.GoogleAPICallError, name: str, permission: str) -> tuple[str, str]:
    """A reason code and a message saying what to do."""
    text = f"{name}: {exc.message}"
    if isinstance(exc, gexc.PermissionDenied):
        role = ADMIN_ROLE if permission == UPDATE_PERMISSION else "roles/bigtable.viewer"
        return (
            Why.PERMISSION_DENIED,
            f"{text} (the controller's service account needs {permission}, e.g. {role}"
            f"{'' if role == ADMIN_ROLE else ' or ' + ADMIN_ROLE})",
        )
    if isinstance(exc, gexc.NotFound):
        return Why.NOT_FOUND, f"{text} (cluster not found)"
    if isinstance(exc, gexc.ResourceExhausted):
        return Why.QUOTA_EXCEEDED, f"{text} (node quota exhausted; request more Bigtable quota)"
    if isinstance(exc, gexc.FailedPrecondition):
        return Why.FAILED_PRECONDITION, text
    if isinstance(exc, gexc.InvalidArgument):
        return Why.INVALID_ARGUMENT, text
    if isinstance(exc, gexc.ServiceUnavailable | gexc.DeadlineExceeded):
        return Why.UNAVAILABLE, text
    return Why.API_ERROR, text


def _status_for(reason: str) -> ApplyStatus:
    if reason in {Why.PERMISSION_DENIED, Why.INVALID_ARGUMENT, Why.NATIVE_AUTOSCALING_ON}:
        return ApplyStatus.REFUSED
    return ApplyStatus.FAILED
