"""`KubernetesScaler`: read and write any workload's `/scale` subresource.

Owns the Kubernetes side of the `Scaler` protocol: resolving the target's apiVersion + kind to a
resource through API discovery (Deployment, StatefulSet, or any custom resource with a scale
subresource), reading current / ready replicas and whether a rollout is in progress (one GET of
the object for Deployments, StatefulSets and ReplicaSets; `/scale` plus the object for other
kinds), refusing a
target that an HPA or a KEDA ScaledObject already scales, and writing `spec.replicas` through
`/scale` with optimistic concurrency (a 409 re-reads and retries a bounded number of times; the
write always carries the resourceVersion it read, so it never blind-overwrites). An `apply` at
the same `now` as a `capacity` read writes with that read's resourceVersion instead of reading
`/scale` again: one request per scale instead of two, and a change made in between still
answers 409 (then re-read).
Must not import `gemini.metrics`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from kubernetes import client

from gemini import kubeclient
from gemini.errors import ScaleError, ScaleRefused, TargetNotFound
from gemini.policy.decision import Capacity
from gemini.scalers import ApplyResult, ApplyStatus, TargetRef

TARGET_CONFLICT = "TargetConflict"
ROLLOUT_IN_PROGRESS = "RolloutInProgress"  # a Capacity reason, recorded in the decision
FORBIDDEN = "Forbidden"
NO_SCALE_SUBRESOURCE = "NoScaleSubresource"
READ_FAILED = "TargetReadFailed"
SCALED = "Scaled"
UNCHANGED = "AlreadyAtDesired"
CONFLICT = "ScaleConflict"
INVALID = "InvalidReplicas"
API_ERROR = "KubernetesError"

KEDA_API_VERSION = "keda.sh/v1alpha1"
LIST_DENIED_RETRY = timedelta(minutes=5)  # after a 403 on a prefetch LIST

# Built-in workloads whose object carries `spec.replicas` and the status `/scale` is made of:
# their capacity is read with one GET of the object instead of `/scale` plus the object.
SELF_DESCRIBING = frozenset(
    {("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "ReplicaSet")}
)


class KubernetesScaler:
    """Scales Kubernetes workloads through `/scale`.

    `api_client`: a `kubernetes.client.ApiClient` (default: `gemini.kubeclient.api_client()`:
    in-cluster config or the default kubeconfig). `max_attempts`: writes tried per `apply` when
    the target changes under us (HTTP 409). `check_conflicts`: look for HPAs / KEDA
    ScaledObjects targeting the workload (needs `list` on both; a 403 there is reported).
    `conflict_ttl_seconds`: reuse a namespace's HPA / ScaledObject lists for this long (measured
    with the `now` the caller passes; 0: list on every call). Whether KEDA is installed at all is
    re-checked every `keda_check_seconds`. `list_threshold`: `prefetch` reads the workloads of
    one namespace and kind with one LIST when at least this many targets are among them (0: never;
    needs `list` on the kind, else per-target GETs stay).
    """

    def __init__(
        self,
        api_client: client.ApiClient | None = None,
        *,
        max_attempts: int = 3,
        check_conflicts: bool = True,
        conflict_ttl_seconds: float = 0.0,
        keda_check_seconds: float = 60.0,
        timeout_seconds: float = kubeclient.DEFAULT_TIMEOUT_SECONDS,
        list_threshold: int = 0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.api: Any = api_client if api_client is not None else kubeclient.api_client()
        self.discovery = kubeclient.Discovery(self.api)
        self.max_attempts = max_attempts
        self.check_conflicts = check_conflicts
        self.timeout = timeout_seconds
        self.conflict_ttl = timedelta(seconds=conflict_ttl_seconds)
        self.keda_check = timedelta(seconds=keda_check_seconds)
        self._keda: tuple[datetime, bool] | None = None
        self._lists: dict[tuple[str, str], tuple[datetime, list[dict[str, Any]] | None]] = {}
        self._lock = threading.Lock()
        self.list_threshold = list_threshold
        self.list_page_size = 500
        # Workloads listed by `prefetch`, per batch instant: {now: {(namespace, path): {name: obj}}}
        self._listed: dict[datetime, dict[tuple[str, str], dict[str, dict[str, Any]]]] = {}
        self._forbidden_lists: dict[tuple[str, str], datetime] = {}
        # The /scale view each `capacity` read saw, per batch instant, for `apply` at that same
        # instant: {now: {(namespace, path): scale}}
        self._read: dict[datetime, dict[tuple[str, str], dict[str, Any]]] = {}
        self.stale_reads = 0  # writes with the batch's read that answered 409 (then re-read)

    # -- protocol ----------------------------------------------------------------------------

    def prefetch(self, refs: Sequence[TargetRef], now: datetime) -> int:
        """Read many targets' workloads ahead of `capacity(ref, now)` (same `now`): one LIST per
        namespace and kind holding at least `list_threshold` of them (following `continue`).
        `capacity` then takes the listed object (as fresh as a GET made now) instead of a GET.
        Best effort: anything not listed (an error, a 403, an object created since) is read
        with a GET as usual. Returns the number of LISTs made."""
        if self.list_threshold <= 0:
            return 0
        groups: dict[tuple[str, str], set[str]] = {}
        for ref in refs:
            try:
                res, name = self._resolve(ref)
            except ScaleError:
                continue
            if (res.group, res.kind) not in SELF_DESCRIBING:
                continue
            path = res.path(ref.namespace)
            groups.setdefault((ref.namespace, path), set()).add(name)
        wanted = []
        for (namespace, path), names in groups.items():
            if len(names) < self.list_threshold:
                continue
            with self._lock:
                denied = self._forbidden_lists.get((namespace, path))
            if denied is not None and timedelta(0) <= now - denied < LIST_DENIED_RETRY:
                continue  # no list grant: per-target GETs; asked again after a while
            wanted.append((namespace, path, names))
        lists = 0
        listed: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        if not wanted:
            return 0
        # The namespaces' LISTs in parallel (a few threads, for this call only).
        with ThreadPoolExecutor(min(len(wanted), 8), thread_name_prefix="list") as pool:
            results = list(pool.map(lambda w: self._list_all(w[1], now, w[0]), wanted))
        for (namespace, path, names), (items, calls) in zip(wanted, results, strict=True):
            lists += calls
            if items is not None:
                listed[(namespace, path)] = {
                    n: o for o in items if (n := (o.get("metadata") or {}).get("name")) in names
                }
        with self._lock:
            self._listed[now] = listed
            for old in sorted(self._listed)[:-4]:  # a few overlapping batches at most
                del self._listed[old]
        return lists

    def _list_all(
        self, path: str, now: datetime, namespace: str
    ) -> tuple[list[dict[str, Any]] | None, int]:
        items: list[dict[str, Any]] = []
        token = ""
        calls = 0
        while True:
            query = {
                "limit": str(self.list_page_size),
                **({"continue": token} if token else {}),
            }
            calls += 1
            try:
                out = kubeclient.request(self.api, "GET", path, query=query, timeout=self.timeout)
            except Exception as exc:
                if kubeclient.describe(exc).code == 403:
                    with self._lock:
                        self._forbidden_lists[(namespace, path)] = now
                return None, calls
            if not isinstance(out, dict):
                return None, calls
            items.extend(i for i in out.get("items") or [] if isinstance(i, dict))
            token = str((out.get("metadata") or {}).get("continue") or "")
            if not token:
                return items, calls

    def _take_listed(
        self, ref: TargetRef, res: kubeclient.Resource, name: str, now: datetime
    ) -> dict[str, Any] | None:
        with self._lock:
            batch = self._listed.get(now)
            objs = batch.get((ref.namespace, res.path(ref.namespace))) if batch else None
            return objs.pop(name, None) if objs else None

    def capacity(self, ref: TargetRef, now: datetime) -> Capacity:
        res, name = self._resolve(ref)
        workload: dict[str, Any] | None = None
        scale: dict[str, Any] | None = None
        if (res.group, res.kind) in SELF_DESCRIBING:
            # One GET (or none after `prefetch`): the workload carries spec.replicas, status and
            # its resourceVersion (the one its /scale answers with). /scale stays the write path
            # (see `apply`).
            workload = self._take_listed(ref, res, name, now)
            if workload is not None and "kind" not in workload:
                # A list's items carry no kind (the API server leaves it out); the rollout
                # check reads it.
                workload = {**workload, "kind": res.kind}
            if workload is None:
                workload = self._read_workload(ref, res, name)
            if workload is not None:
                scale = scale_of(workload)
        if scale is None:
            # Any other kind (or a workload we may not read, or one without spec.replicas):
            # /scale, then the workload when readable.
            scale = self._get_scale(ref, res, name)
            if (res.group, res.kind) not in SELF_DESCRIBING:
                workload = self._get_workload(ref, res, name)
        self._remember(ref, res, name, now, scale)
        return self._capacity(ref, now, res, scale, workload)

    def _remember(
        self,
        ref: TargetRef,
        res: kubeclient.Resource,
        name: str,
        now: datetime,
        scale: Mapping[str, Any],
    ) -> None:
        if not (scale.get("metadata") or {}).get("resourceVersion"):
            return  # nothing to guard a write with: `apply` reads /scale itself
        key = (ref.namespace, res.path(ref.namespace, name, "scale"))
        with self._lock:
            batch = self._read.get(now)
            if batch is None:
                batch = self._read[now] = {}
                for old in sorted(self._read)[:-4]:  # a few overlapping batches at most
                    del self._read[old]
            batch[key] = dict(scale)

    def _take_read(
        self, ref: TargetRef, res: kubeclient.Resource, name: str, now: datetime
    ) -> dict[str, Any] | None:
        """The `/scale` view `capacity(ref, now)` read, once (a retry after a 409 reads anew)."""
        key = (ref.namespace, res.path(ref.namespace, name, "scale"))
        with self._lock:
            batch = self._read.get(now)
            return batch.pop(key, None) if batch else None

    def _capacity(
        self,
        ref: TargetRef,
        now: datetime,
        res: kubeclient.Resource,
        scale: Mapping[str, Any],
        workload: Mapping[str, Any] | None,
    ) -> Capacity:
        current = int(scale.get("spec", {}).get("replicas") or 0)
        status_replicas = int(scale.get("status", {}).get("replicas") or 0)
        detail: dict[str, Any] = {
            "resource": res.qualified,
            "resourceVersion": scale.get("metadata", {}).get("resourceVersion"),
            "statusReplicas": status_replicas,
        }
        ready = status_replicas
        if workload is not None:
            status = workload.get("status") or {}
            # apps workloads omit `readyReplicas` when none is ready (omitempty)
            if "readyReplicas" in status or (res.group, res.kind) in SELF_DESCRIBING:
                ready = int(status.get("readyReplicas") or 0)
            detail["readyReplicas"] = ready
            rollout, why = rollout_in_progress(workload, current)
            detail["rolloutInProgress"] = rollout
            if why:
                detail["rollout"] = why
        blocked = None
        if self.check_conflicts:
            owners = self._owners(ref, now)
            if owners:
                blocked = TARGET_CONFLICT
                detail["conflict"] = conflict_message(ref, owners)
        reasons = (ROLLOUT_IN_PROGRESS,) if detail.get("rolloutInProgress") else ()
        return Capacity(
            current=current, ready=ready, blocked=blocked, detail=detail, reasons=reasons
        )

    def apply(self, ref: TargetRef, desired: int, now: datetime) -> ApplyResult:
        if desired < 0:
            return ApplyResult(ApplyStatus.FAILED, 0, INVALID, f"desired replicas {desired} < 0")
        try:
            res, name = self._resolve(ref)
            # The capacity read at this instant (its resourceVersion guards the write), else a
            # fresh read.
            reused = self._take_read(ref, res, name, now)
            scale = reused or self._get_scale(ref, res, name)
            if self.check_conflicts:
                owners = self._owners(ref, now)
                if owners:
                    current = int(scale.get("spec", {}).get("replicas") or 0)
                    return ApplyResult(
                        ApplyStatus.REFUSED, current, TARGET_CONFLICT, conflict_message(ref, owners)
                    )
        except TargetNotFound as exc:
            return ApplyResult(ApplyStatus.FAILED, 0, exc.reason, str(exc))
        except ScaleRefused as exc:
            return ApplyResult(ApplyStatus.REFUSED, 0, exc.reason, str(exc))
        except ScaleError as exc:
            return ApplyResult(ApplyStatus.FAILED, 0, exc.reason, str(exc))

        path = res.path(ref.namespace, name, "scale")
        conflicts = 0
        while True:
            current = int(scale.get("spec", {}).get("replicas") or 0)
            if current == desired:
                note = f" (after {conflicts} conflicting writes)" if conflicts else ""
                return ApplyResult(
                    ApplyStatus.UNCHANGED, current, UNCHANGED, f"already {current}{note}"
                )
            body = {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {
                    "name": name,
                    "namespace": ref.namespace,
                    "resourceVersion": scale.get("metadata", {}).get("resourceVersion"),
                },
                "spec": {"replicas": desired},
            }
            try:
                out = kubeclient.request(self.api, "PUT", path, body, timeout=self.timeout)
            except Exception as exc:
                err = kubeclient.describe(exc)
                if err.code == 409:
                    if reused is not None:
                        # The batch's read is seconds old: a status update of the workload
                        # (a pod became ready) moves its resourceVersion too. Not someone else's
                        # write, so not counted against `max_attempts`: read now and go on.
                        reused = None
                        with self._lock:
                            self.stale_reads += 1
                    else:
                        conflicts += 1
                    if conflicts >= self.max_attempts:
                        return ApplyResult(
                            ApplyStatus.CONFLICT,
                            current,
                            CONFLICT,
                            f"{describe_target(ref)} changed under us {conflicts} times; "
                            f"last: {err.message}",
                        )
                    try:
                        scale = self._get_scale(ref, res, name)
                    except ScaleError as again:
                        return _result_for(again, current)
                    continue
                return _write_failure(ref, res, err, current)
            replicas = int((out or {}).get("spec", {}).get("replicas", desired))
            return ApplyResult(
                ApplyStatus.APPLIED,
                replicas,
                SCALED,
                f"{describe_target(ref)}: {current} -> {replicas}",
            )

    def close(self) -> None:
        self.api.close()

    # -- reads -------------------------------------------------------------------------------

    def _resolve(self, ref: TargetRef) -> tuple[kubeclient.Resource, str]:
        k = ref.target.kubernetes
        if k is None:
            raise ScaleRefused(
                f"{ref.policy}: target is not a Kubernetes workload", "WrongTargetKind"
            )
        try:
            res = self.discovery.resolve(k.api_version, k.kind)
        except kubeclient.UnknownKind as exc:
            raise TargetNotFound(f"{describe_target(ref)}: {exc}") from None
        except Exception as exc:
            raise _read_error(
                ref, kubeclient.describe(exc), "get", f"{k.api_version} discovery"
            ) from None
        if "scale" not in res.subresources:
            self.discovery.forget(k.api_version, k.kind)  # the CRD may gain /scale: ask again
            raise ScaleRefused(
                f"{describe_target(ref)}: {res.qualified} has no /scale subresource",
                NO_SCALE_SUBRESOURCE,
            )
        return res, k.name

    def _get_scale(self, ref: TargetRef, res: kubeclient.Resource, name: str) -> dict[str, Any]:
        path = res.path(ref.namespace, name, "scale")
        try:
            out = kubeclient.request(self.api, "GET", path, timeout=self.timeout)
        except Exception as exc:
            err = kubeclient.describe(exc)
            if err.code == 404:
                raise TargetNotFound(
                    f"{describe_target(ref)} not found in namespace {ref.namespace}"
                ) from None
            if err.code == 403:
                raise forbidden("get", res, "scale", ref.namespace, err) from None
            raise _read_error(ref, err, "get", f"{res.plural}/scale") from None
        if not isinstance(out, dict):
            raise ScaleError(f"{describe_target(ref)}: /scale answered {out!r}", READ_FAILED)
        return out

    def _read_workload(
        self, ref: TargetRef, res: kubeclient.Resource, name: str
    ) -> dict[str, Any] | None:
        """The workload as the capacity read: errors are the target's, except a 403 (RBAC
        may grant only `*/scale`), which answers None so that `/scale` is read instead."""
        try:
            out = kubeclient.request(
                self.api, "GET", res.path(ref.namespace, name), timeout=self.timeout
            )
        except Exception as exc:
            err = kubeclient.describe(exc)
            if err.code == 403:
                return None
            if err.code == 404:
                raise TargetNotFound(
                    f"{describe_target(ref)} not found in namespace {ref.namespace}"
                ) from None
            raise _read_error(ref, err, "get", res.plural) from None
        return out if isinstance(out, dict) else None

    def _get_workload(
        self, ref: TargetRef, res: kubeclient.Resource, name: str
    ) -> dict[str, Any] | None:
        """The workload itself, for ready replicas and rollout state; None when not readable
        (e.g. RBAC grants only `*/scale`): then the scale's status stands in."""
        try:
            out = kubeclient.request(
                self.api, "GET", res.path(ref.namespace, name), timeout=self.timeout
            )
        except Exception:
            return None
        return out if isinstance(out, dict) else None

    def _owners(self, ref: TargetRef, now: datetime) -> list[str]:
        """HPAs and KEDA ScaledObjects in the namespace whose scaleTargetRef is this target."""
        k = ref.target.kubernetes
        assert k is not None
        owners: list[str] = []
        hpas: list[dict[str, Any]] | None = None
        for version in ("v2", "v1"):  # autoscaling/v2 since Kubernetes 1.23; v1 before
            hpa_path = (
                f"/apis/autoscaling/{version}/namespaces/{ref.namespace}/horizontalpodautoscalers"
            )
            hpas = self._list(ref, now, hpa_path, "autoscaling", "horizontalpodautoscalers")
            if hpas is not None:
                break
        for item in hpas or []:
            if targets(item, k.api_version, k.kind, k.name, default_kind=None):
                owners.append(f"HorizontalPodAutoscaler {_name(item)}")
        if self._keda_installed(ref, now):
            keda_path = f"/apis/{KEDA_API_VERSION}/namespaces/{ref.namespace}/scaledobjects"
            for item in self._list(ref, now, keda_path, "keda.sh", "scaledobjects") or []:
                if targets(item, k.api_version, k.kind, k.name, default_kind="Deployment"):
                    owners.append(f"KEDA ScaledObject {_name(item)}")
        return owners

    def _keda_installed(self, ref: TargetRef, now: datetime) -> bool:
        with self._lock:
            known = self._keda
        if known is not None and timedelta(0) <= now - known[0] < self.keda_check:
            return known[1]
        try:
            installed = self.discovery.served(KEDA_API_VERSION)
        except Exception as exc:  # cannot tell: a read failure of this target, not a crash
            raise _read_error(
                ref, kubeclient.describe(exc), "get", f"{KEDA_API_VERSION} discovery"
            ) from None
        with self._lock:
            self._keda = (now, installed)
        return installed

    def _list(
        self, ref: TargetRef, now: datetime, path: str, group: str, plural: str
    ) -> list[dict[str, Any]] | None:
        """The items at `path`, or None when that API is not served (404)."""
        key = (ref.namespace, path)
        with self._lock:
            cached = self._lists.get(key)
        if cached is not None and timedelta(0) <= now - cached[0] < self.conflict_ttl:
            return cached[1]
        items = self._list_now(ref, path, group, plural)
        if self.conflict_ttl > timedelta(0):
            with self._lock:
                self._lists[key] = (now, items)
        return items

    def _list_now(
        self, ref: TargetRef, path: str, group: str, plural: str
    ) -> list[dict[str, Any]] | None:
        try:
            out = kubeclient.request(self.api, "GET", path, timeout=self.timeout)
        except Exception as exc:
            err = kubeclient.describe(exc)
            if err.code == 404:
                return None  # the API is not served: nobody scales through it
            if err.code == 403:
                raise ScaleRefused(
                    f"cannot list {plural} in namespace {ref.namespace} (needed to detect "
                    f"conflicting autoscalers): grant list on {group} {plural}",
                    FORBIDDEN,
                ) from None
            raise _read_error(ref, err, "list", plural) from None
        items = out.get("items", []) if isinstance(out, dict) else []
        return [i for i in items if isinstance(i, dict)]


# ---------------------------------------------------------------------------------------------
# Helpers (pure)


def ref_kind(ref: TargetRef) -> str:
    return ref.target.kubernetes.kind if ref.target.kubernetes is not None else ""


def describe_target(ref: TargetRef) -> str:
    k = ref.target.kubernetes
    if k is None:
        return ref.policy
    return f"{k.kind} {ref.namespace}/{k.name}"


def _name(item: Mapping[str, Any]) -> str:
    meta = item.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '?')}".lstrip("/")


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def targets(
    item: Mapping[str, Any], api_version: str, kind: str, name: str, *, default_kind: str | None
) -> bool:
    """Whether an HPA / ScaledObject's `spec.scaleTargetRef` points at this workload.

    The group is compared, not the version (`apps/v1` and `apps/v1beta2` name the same object);
    KEDA defaults a missing kind to Deployment (apps/v1).
    """
    ref = (item.get("spec") or {}).get("scaleTargetRef") or {}
    if ref.get("name") != name:
        return False
    their_kind = ref.get("kind") or default_kind
    if their_kind is not None and their_kind != kind:
        return False
    their_api = ref.get("apiVersion") or ("apps/v1" if default_kind else None)
    return their_api is None or _group(their_api) == _group(api_version)


def conflict_message(ref: TargetRef, owners: list[str]) -> str:
    return f"{describe_target(ref)} is already scaled by {', '.join(owners)}; not acting on it"


def scale_of(workload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `/scale` view of a built-in workload (spec.replicas, status.replicas and the object's
    resourceVersion, as the API server builds it), or None when `spec.replicas` is missing."""
    replicas = (workload.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        return None
    meta = workload.get("metadata") or {}
    return {
        "metadata": {"resourceVersion": meta.get("resourceVersion")},
        "spec": {"replicas": replicas},
        "status": {"replicas": int((workload.get("status") or {}).get("replicas") or 0)},
    }


def rollout_in_progress(workload: Mapping[str, Any], desired: int) -> tuple[bool, str]:
    """(in progress, why) from a workload's generation and status."""
    meta = workload.get("metadata") or {}
    status = workload.get("status") or {}
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and int(observed) < int(generation):
        return True, f"observedGeneration {observed} < generation {generation}"
    kind = workload.get("kind")
    if kind in ("Deployment", "StatefulSet") and status:
        updated = int(status.get("updatedReplicas") or 0)
        if updated < desired:
            return True, f"updatedReplicas {updated} < replicas {desired}"
    if kind == "StatefulSet":
        cur, upd = status.get("currentRevision"), status.get("updateRevision")
        if cur and upd and cur != upd:
            return True, f"currentRevision {cur} != updateRevision {upd}"
    return False, ""


def forbidden(
    verb: str, res: kubeclient.Resource, sub: str | None, namespace: str, err: kubeclient.KubeError
) -> ScaleRefused:
    resource = f"{res.plural}/{sub}" if sub else res.plural
    group = res.group or "core"
    return ScaleRefused(
        f"cannot {verb} {resource} in namespace {namespace}: grant {verb} on {group} {resource} "
        f"({err.message})",
        FORBIDDEN,
    )


def _read_error(ref: TargetRef, err: kubeclient.KubeError, verb: str, what: str) -> ScaleError:
    if err.code == 403:
        return ScaleRefused(
            f"cannot {verb} {what} in namespace {ref.namespace}: {err.message}", FORBIDDEN
        )
    return ScaleError(f"{describe_target(ref)}: {verb} {what} failed: {err.message}", READ_FAILED)


def _result_for(exc: ScaleError, current: int) -> ApplyResult:
    if isinstance(exc, TargetNotFound):
        return ApplyResult(ApplyStatus.FAILED, current, exc.reason, str(exc))
    if isinstance(exc, ScaleRefused):
        return ApplyResult(ApplyStatus.REFUSED, current, exc.reason, str(exc))
    return ApplyResult(ApplyStatus.FAILED, current, exc.reason, str(exc))


def _write_failure(
    ref: TargetRef, res: kubeclient.Resource, err: kubeclient.KubeError, current: int
) -> ApplyResult:
    if err.code == 403:
        refused = forbidden("update", res, "scale", ref.namespace, err)
        return ApplyResult(ApplyStatus.REFUSED, current, refused.reason, str(refused))
    if err.code == 404:
        return ApplyResult(
            ApplyStatus.FAILED,
            current,
            TargetNotFound.reason,
            f"{describe_target(ref)} not found in namespace {ref.namespace}",
        )
    if err.code == 422:
        return ApplyResult(ApplyStatus.FAILED, current, INVALID, err.message)
    return ApplyResult(
        ApplyStatus.FAILED, current, API_ERROR, f"{describe_target(ref)}: {err.code} {err.message}"
    )
