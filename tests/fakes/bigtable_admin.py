"""An in-process Cloud Bigtable instance-admin server for tests (gRPC on 127.0.0.1).

Implements `google.bigtable.admin.v2.BigtableInstanceAdmin` (GetInstance, GetCluster,
ListClusters, UpdateCluster, PartialUpdateCluster) and `google.longrunning.Operations`
(GetOperation) with the protobuf / proto-plus types that google-cloud-bigtable and
googleapis-common-protos ship, so the real `BigtableInstanceAdminClient` talks to it unchanged.

Test controls: clusters (serve_nodes, storage type, state, native autoscaling config); a resize
returns a long-running operation that completes after `polls_to_complete` GetOperation calls or on
demand (`complete`), or fails with a given status (`fail_next_operation`, `fail_operation`); a
resize "by someone else" can be injected (`external_resize`); errors can be injected per RPC
(`inject`); every request is logged (`log`); `max_in_flight` records the most operations that ever
ran at once on one cluster. Imports nothing from `gemini`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.cloud.bigtable_admin_v2.types import bigtable_instance_admin as bia
from google.cloud.bigtable_admin_v2.types import common, instance
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import status_pb2

SERVICE = "google.bigtable.admin.v2.BigtableInstanceAdmin"
AUTOSCALING = "cluster_config.cluster_autoscaling_config"
MIN_PATH = f"{AUTOSCALING}.autoscaling_limits.min_serve_nodes"
MAX_PATH = f"{AUTOSCALING}.autoscaling_limits.max_serve_nodes"

CODES = {
    "FAILED_PRECONDITION": grpc.StatusCode.FAILED_PRECONDITION,
    "RESOURCE_EXHAUSTED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "PERMISSION_DENIED": grpc.StatusCode.PERMISSION_DENIED,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "INTERNAL": grpc.StatusCode.INTERNAL,
}


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class FakeOperation:
    name: str
    cluster: str
    serve_nodes: int | None  # target node count (manual scaling)
    limits: tuple[int, int] | None  # target (min, max) (native autoscaling)
    ours: bool  # started through the API (False: "someone else", e.g. the console)
    polls_left: int | None  # None: completes only on demand
    fail_with: tuple[grpc.StatusCode, str] | None = None
    done: bool = False
    error: tuple[int, str] | None = None
    original: bytes = b""


@dataclass
class Injected:
    code: grpc.StatusCode
    message: str
    times: int | None  # None: until cleared


@dataclass
class FakeBigtableAdmin:
    """The server's state. Use `start()` / `stop()` (or the `running()` helper)."""

    polls_to_complete: int | None = 1
    clusters: dict[str, instance.Cluster] = field(default_factory=dict)
    instances: dict[str, instance.Instance] = field(default_factory=dict)
    operations: dict[str, FakeOperation] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)
    max_in_flight: int = 0
    _errors: dict[str, list[Injected]] = field(default_factory=dict)
    _fail_next: tuple[grpc.StatusCode, str] | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _server: grpc.Server | None = None
    address: str = ""

    # -- set-up ---------------------------------------------------------------------------------

    def add_cluster(
        self,
        project: str,
        instance_id: str,
        cluster_id: str,
        serve_nodes: int,
        *,
        storage: str = "SSD",
        state: str = "READY",
        autoscaling: tuple[int, int] | None = None,
        cpu_target: int = 60,
        location: str = "us-central1-b",
    ) -> str:
        inst_name = f"projects/{project}/instances/{instance_id}"
        name = f"{inst_name}/clusters/{cluster_id}"
        cluster = instance.Cluster(
            name=name,
            location=f"projects/{project}/locations/{location}",
            state=instance.Cluster.State[state],
            serve_nodes=serve_nodes,
            default_storage_type=common.StorageType[storage],
        )
        if autoscaling is not None:
            cluster.cluster_config = instance.Cluster.ClusterConfig(
                cluster_autoscaling_config=instance.Cluster.ClusterAutoscalingConfig(
                    autoscaling_limits=instance.AutoscalingLimits(
                        min_serve_nodes=autoscaling[0], max_serve_nodes=autoscaling[1]
                    ),
                    autoscaling_targets=instance.AutoscalingTargets(
                        cpu_utilization_percent=cpu_target
                    ),
                )
            )
        with self._lock:
            self.clusters[name] = cluster
            self.instances.setdefault(
                inst_name,
                instance.Instance(
                    name=inst_name, display_name=instance_id, state=instance.Instance.State.READY
                ),
            )
        return name

    def cluster(self, name: str) -> instance.Cluster:
        with self._lock:
            return instance.Cluster.deserialize(instance.Cluster.serialize(self.clusters[name]))

    def delete_cluster(self, name: str) -> None:
        """Delete the cluster; its running operations end with NOT_FOUND."""
        with self._lock:
            del self.clusters[name]
            for op in self.in_flight(name):
                op.fail_with = (grpc.StatusCode.NOT_FOUND, f"cluster {name} was deleted")
                self._finish(op)

    def set_serve_nodes(self, name: str, nodes: int) -> None:
        """Change the node count directly (as if someone else's resize had finished)."""
        with self._lock:
            self.clusters[name].serve_nodes = nodes

    def inject(self, method: str, code: str, message: str = "", *, times: int | None = 1) -> None:
        """Make `method` fail with gRPC status `code` for the next `times` calls (None: until
        `clear_errors`)."""
        with self._lock:
            self._errors.setdefault(method, []).append(
                Injected(CODES[code], message or f"injected {code}", times)
            )

    def clear_errors(self, method: str | None = None) -> None:
        with self._lock:
            if method is None:
                self._errors.clear()
            else:
                self._errors.pop(method, None)

    def fail_next_operation(self, code: str, message: str) -> None:
        """The next resize operation started through the API ends with this error."""
        with self._lock:
            self._fail_next = (CODES[code], message)

    def external_resize(self, name: str, nodes: int, *, polls: int | None = None) -> str:
        """Someone else (console, gcloud) starts a resize: the cluster is RESIZING until the
        operation completes (after `polls` GetCluster calls, or on `complete`)."""
        with self._lock:
            op = self._new_operation(name, nodes, None, ours=False, polls=polls)
            self.clusters[name].state = instance.Cluster.State.RESIZING
            return op.name

    # -- operations -----------------------------------------------------------------------------

    def in_flight(self, cluster: str | None = None) -> list[FakeOperation]:
        with self._lock:
            return [
                o
                for o in self.operations.values()
                if not o.done and (cluster is None or o.cluster == cluster)
            ]

    def complete(self, name: str | None = None) -> None:
        """Finish one operation (or all running ones) now, successfully unless it was set to
        fail."""
        with self._lock:
            for op in list(self.operations.values()):
                if not op.done and (name is None or op.name == name):
                    self._finish(op)

    def fail_operation(self, name: str | None, code: str, message: str) -> None:
        """Finish one running operation (or all) with an error."""
        with self._lock:
            for op in list(self.operations.values()):
                if not op.done and (name is None or op.name == name):
                    op.fail_with = (CODES[code], message)
                    self._finish(op)

    def requests(self, method: str) -> list[str]:
        with self._lock:
            return [detail for m, detail in self.log if m == method]

    def _new_operation(
        self,
        cluster: str,
        nodes: int | None,
        limits: tuple[int, int] | None,
        *,
        ours: bool,
        polls: int | None,
    ) -> FakeOperation:
        location = self.clusters[cluster].location.rsplit("/", 1)[-1]
        name = f"operations/{cluster}/locations/{location}/operations/{next(self._ids)}"
        op = FakeOperation(name, cluster, nodes, limits, ours, polls)
        self.operations[name] = op
        self.max_in_flight = max(self.max_in_flight, len(self.in_flight(cluster)))
        return op

    def _finish(self, op: FakeOperation) -> None:
        op.done = True
        cluster = self.clusters.get(op.cluster)
        if cluster is not None:
            cluster.state = instance.Cluster.State.READY
        if op.fail_with is not None:
            op.error = (op.fail_with[0].value[0], op.fail_with[1])
            return
        if cluster is None:
            op.error = (grpc.StatusCode.NOT_FOUND.value[0], f"cluster {op.cluster} not found")
            return
        auto = _autoscaling(cluster)
        if op.limits is not None and auto is not None:
            auto.autoscaling_limits.min_serve_nodes = op.limits[0]
            auto.autoscaling_limits.max_serve_nodes = op.limits[1]
            # raising the minimum scales the cluster up to it at once (Google's docs)
            cluster.serve_nodes = min(max(cluster.serve_nodes, op.limits[0]), op.limits[1])
        elif op.serve_nodes is not None and (auto is None or not op.ours):
            cluster.serve_nodes = op.serve_nodes

    def _operation_proto(self, op: FakeOperation) -> operations_pb2.Operation:
        meta = any_pb2.Any()
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        metadata = bia.PartialUpdateClusterMetadata(request_time=now)
        meta.Pack(bia.PartialUpdateClusterMetadata.pb(metadata))
        out = operations_pb2.Operation(name=op.name, metadata=meta, done=op.done)
        if op.done and op.error is not None:
            out.error.CopyFrom(status_pb2.Status(code=op.error[0], message=op.error[1]))
        elif op.done and op.cluster in self.clusters:
            out.response.Pack(instance.Cluster.pb(self.clusters[op.cluster]))
        return out

    # -- RPC plumbing ---------------------------------------------------------------------------

    def _check(self, method: str, detail: str) -> None:
        self.log.append((method, detail))
        queue = self._errors.get(method)
        if not queue:
            return
        err = queue[0]
        if err.times is not None:
            err.times -= 1
            if err.times <= 0:
                queue.pop(0)
        raise _Abort(err.code, err.message)

    def _get(self, name: str) -> instance.Cluster:
        cluster = self.clusters.get(name)
        if cluster is None:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Cluster {name} not found.")
        return cluster

    def _tick_external(self, name: str) -> None:
        for op in self.in_flight(name):
            if not op.ours and op.polls_left is not None:
                op.polls_left -= 1
                if op.polls_left <= 0:
                    self._finish(op)

    def get_instance(self, req: bia.GetInstanceRequest) -> instance.Instance:
        self._check("GetInstance", req.name)
        inst = self.instances.get(req.name)
        if inst is None:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Instance {req.name} not found.")
        return inst

    def get_cluster(self, req: bia.GetClusterRequest) -> instance.Cluster:
        self._check("GetCluster", req.name)
        self._tick_external(req.name)
        return self._get(req.name)

    def list_clusters(self, req: bia.ListClustersRequest) -> bia.ListClustersResponse:
        self._check("ListClusters", req.parent)
        if req.parent not in self.instances:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Instance {req.parent} not found.")
        return bia.ListClustersResponse(
            clusters=[c for n, c in sorted(self.clusters.items()) if n.startswith(req.parent + "/")]
        )

    def _start_resize(
        self, name: str, nodes: int | None, limits: tuple[int, int] | None
    ) -> operations_pb2.Operation:
        cluster = self._get(name)
        if cluster.state == instance.Cluster.State.RESIZING or self.in_flight(name):
            raise _Abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Cluster {name} is currently being updated; try again later.",
            )
        if nodes is not None and nodes < 1:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "serve_nodes must be at least 1")
        if limits is not None:
            low, high = limits
            if low < 1 or high < low or high > 10 * low:
                raise _Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"invalid autoscaling limits min={low} max={high}: need 1 <= min <= max "
                    "<= 10 x min",
                )
        op = self._new_operation(name, nodes, limits, ours=True, polls=self.polls_to_complete)
        if self._fail_next is not None:
            op.fail_with, self._fail_next = self._fail_next, None
        cluster.state = instance.Cluster.State.RESIZING
        if op.polls_left == 0:
            self._finish(op)
        return self._operation_proto(op)

    def partial_update_cluster(self, req: bia.PartialUpdateClusterRequest) -> Any:
        paths = list(req.update_mask.paths)
        self._check("PartialUpdateCluster", f"{req.cluster.name} {','.join(paths)}")
        cluster = self._get(req.cluster.name)
        if not paths:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "update_mask is required")
        unknown = [p for p in paths if p not in {"serve_nodes", MIN_PATH, MAX_PATH}]
        if unknown:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"unsupported update_mask {unknown}")
        auto = _autoscaling(cluster)
        if "serve_nodes" in paths:
            return self._start_resize(cluster.name, req.cluster.serve_nodes, None)
        if auto is None:
            raise _Abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Cluster {cluster.name} does not have autoscaling enabled",
            )
        limits = req.cluster.cluster_config.cluster_autoscaling_config.autoscaling_limits
        low = (
            limits.min_serve_nodes if MIN_PATH in paths else auto.autoscaling_limits.min_serve_nodes
        )
        high = (
            limits.max_serve_nodes if MAX_PATH in paths else auto.autoscaling_limits.max_serve_nodes
        )
        return self._start_resize(cluster.name, None, (low, high))

    def update_cluster(self, req: instance.Cluster) -> Any:
        self._check("UpdateCluster", f"{req.name} serve_nodes={req.serve_nodes}")
        return self._start_resize(req.name, req.serve_nodes, None)

    def get_operation(self, req: operations_pb2.GetOperationRequest) -> operations_pb2.Operation:
        self._check("GetOperation", req.name)
        op = self.operations.get(req.name)
        if op is None:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Operation {req.name} not found.")
        if not op.done and op.polls_left is not None and op.ours:
            op.polls_left -= 1
            if op.polls_left <= 0:
                self._finish(op)
        return self._operation_proto(op)

    # -- server ---------------------------------------------------------------------------------

    def _wrap(self, fn: Callable[[Any], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
        def handler(request: Any, context: grpc.ServicerContext) -> Any:
            with self._lock:
                try:
                    return fn(request)
                except _Abort as exc:
                    failure = exc
            context.abort(failure.code, failure.message)

        return handler

    def start(self) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))

        def unary(fn: Callable[[Any], Any], req_type: Any, resp_ser: Any) -> Any:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap(fn),
                request_deserializer=req_type,
                response_serializer=resp_ser,
            )

        op_ser = operations_pb2.Operation.SerializeToString
        handlers = {
            "GetInstance": unary(
                self.get_instance, bia.GetInstanceRequest.deserialize, instance.Instance.serialize
            ),
            "GetCluster": unary(
                self.get_cluster, bia.GetClusterRequest.deserialize, instance.Cluster.serialize
            ),
            "ListClusters": unary(
                self.list_clusters,
                bia.ListClustersRequest.deserialize,
                bia.ListClustersResponse.serialize,
            ),
            "PartialUpdateCluster": unary(
                self.partial_update_cluster, bia.PartialUpdateClusterRequest.deserialize, op_ser
            ),
            "UpdateCluster": unary(self.update_cluster, instance.Cluster.deserialize, op_ser),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))

        fake = self

        class Operations(operations_pb2_grpc.OperationsServicer):
            def GetOperation(
                self, request: operations_pb2.GetOperationRequest, context: grpc.ServicerContext
            ) -> operations_pb2.Operation:
                result: operations_pb2.Operation = fake._wrap(fake.get_operation)(request, context)
                return result

        operations_pb2_grpc.add_OperationsServicer_to_server(Operations(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        self.address = f"127.0.0.1:{port}"
        return self.address

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None


def _autoscaling(cluster: instance.Cluster) -> instance.Cluster.ClusterAutoscalingConfig | None:
    if "cluster_config" not in cluster:
        return None
    config = cluster.cluster_config
    if "cluster_autoscaling_config" not in config:
        return None
    auto = config.cluster_autoscaling_config
    if auto.autoscaling_limits.max_serve_nodes <= 0:
        return None
    return auto


@contextmanager
def running(polls_to_complete: int | None = 1) -> Iterator[FakeBigtableAdmin]:
    """A started fake server, stopped on exit."""
    fake = FakeBigtableAdmin(polls_to_complete=polls_to_complete)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
