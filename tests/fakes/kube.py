"""A small but real Kubernetes API server over HTTP, for tests.

The real `kubernetes` Python client talks to it (`Configuration(host=server.url)`). Objects live
in memory under one global resourceVersion counter. It serves discovery (`/api`, `/apis`,
`/apis/<group>/<version>`, `/version`), CRUD with optimistic concurrency (409 on a stale
`metadata.resourceVersion`), `metadata.generation` bumps on spec changes only, the `/status`
and `/scale` subresources (Scale objects mapped onto `spec.replicas`-style paths, also for custom
resources with `specReplicasPath`/`statusReplicasPath`), JSON merge / strategic-merge (treated as
merge) / JSON patch, list and watch (`?watch=true&resourceVersion=N`, bookmarks, 410 Gone after
compaction, server-side `timeoutSeconds`), custom resources registered at runtime (POST a CRD or
call `register_crd` / `add_resource`), an RBAC simulation (`deny`), fault injection
(`fail_next`, `drop_watches`, `compact`) and a request log.

Typical use::

    with KubeServer() as server:
        server.put_object(deployment("web", replicas=3))
        api = server.api_client()          # a kubernetes.client.ApiClient

or the `kube_server` pytest fixture below. Test-only code: imports nothing from `gemini`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

Obj = dict[str, Any]

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


# ---------------------------------------------------------------------------------------------
# Resource types


@dataclass(frozen=True, slots=True)
class ScalePaths:
    """Where a resource keeps its replicas (the CRD `scale` subresource fields)."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = None  # a path to a selector *string*; None: spec.selector


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status: bool = False
    scale: ScalePaths | None = None
    short_names: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`deployments.apps`, as the real server names resources in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery(self) -> list[Obj]:
        verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        out: list[Obj] = [
            {
                "name": self.plural,
                "singularName": self.kind.lower(),
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": verbs,
                **({"shortNames": list(self.short_names)} if self.short_names else {}),
            }
        ]
        if self.status:
            out.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if self.scale is not None:
            out.append(
                {
                    "name": f"{self.plural}/scale",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }
            )
        return out


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, status=True),
    ResourceType("", "v1", "events", "Event", short_names=("ev",)),
    ResourceType("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    ResourceType("", "v1", "pods", "Pod", status=True, short_names=("po",)),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    ResourceType("apps", "v1", "deployments", "Deployment", status=True, scale=ScalePaths()),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", status=True, scale=ScalePaths()),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", status=True, scale=ScalePaths()),
    ResourceType(
        "autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", status=True
    ),
    ResourceType(
        "autoscaling", "v1", "horizontalpodautoscalers", "HorizontalPodAutoscaler", status=True
    ),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease"),
    ResourceType("events.k8s.io", "v1", "events", "Event"),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        status=True,
    ),
)

KEDA_SCALEDOBJECTS = ResourceType(
    "keda.sh", "v1alpha1", "scaledobjects", "ScaledObject", status=True
)


# ---------------------------------------------------------------------------------------------
# Object builders (plain dicts, as the API serves them)


def deployment(
    name: str,
    namespace: str = "default",
    *,
    replicas: int = 1,
    ready: int | None = None,
    labels: Mapping[str, str] | None = None,
) -> Obj:
    """A Deployment whose status says `ready` (default: all) replicas are ready and updated."""
    return _workload("Deployment", name, namespace, replicas, ready, labels)


def statefulset(
    name: str,
    namespace: str = "default",
    *,
    replicas: int = 1,
    ready: int | None = None,
    labels: Mapping[str, str] | None = None,
) -> Obj:
    return _workload("StatefulSet", name, namespace, replicas, ready, labels)


def _workload(
    kind: str,
    name: str,
    namespace: str,
    replicas: int,
    ready: int | None,
    labels: Mapping[str, str] | None,
) -> Obj:
    match = dict(labels or {"app": name})
    ready_n = replicas if ready is None else ready
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": dict(match)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": match},
            "template": {
                "metadata": {"labels": match},
                "spec": {"containers": [{"name": "main", "image": "example/app:1"}]},
            },
        },
        "status": {
            "replicas": replicas,
            "readyReplicas": ready_n,
            "availableReplicas": ready_n,
            "updatedReplicas": replicas,
            "observedGeneration": 1,
        },
    }


def hpa(name: str, target_kind: str, target_name: str, namespace: str = "default") -> Obj:
    api_version = "apps/v1"
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": api_version, "kind": target_kind, "name": target_name},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }


def scaled_object(
    name: str, target_name: str, namespace: str = "default", target_kind: str | None = None
) -> Obj:
    ref: Obj = {"name": target_name}
    if target_kind is not None:
        ref["kind"] = target_kind
        ref["apiVersion"] = "apps/v1"
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"scaleTargetRef": ref, "triggers": [{"type": "cpu", "metadata": {"value": "50"}}]},
    }


def crd(
    group: str,
    plural: str,
    kind: str,
    *,
    version: str = "v1alpha1",
    namespaced: bool = True,
    status: bool = True,
    scale: ScalePaths | None = None,
) -> Obj:
    """A CustomResourceDefinition for `register_crd` (or POSTing to the server)."""
    subresources: Obj = {}
    if status:
        subresources["status"] = {}
    if scale is not None:
        subresources["scale"] = {
            "specReplicasPath": scale.spec_replicas,
            "statusReplicasPath": scale.status_replicas,
            **({"labelSelectorPath": scale.label_selector} if scale.label_selector else {}),
        }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced" if namespaced else "Cluster",
            "names": {"plural": plural, "kind": kind, "singular": kind.lower()},
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                    **({"subresources": subresources} if subresources else {}),
                }
            ],
        },
    }


# ---------------------------------------------------------------------------------------------
# Helpers


class ApiError(Exception):
    """An error answered as a Status object."""

    def __init__(self, code: int, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def status(self) -> Obj:
        return status_object(self.code, self.message, self.details)


def status_object(code: int, message: str, details: Obj | None = None) -> Obj:
    out: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": _REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details:
        out["details"] = details
    return out


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _path_get(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in path.lstrip(".").split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _path_set(obj: Obj, path: str, value: Any) -> None:
    parts = path.lstrip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[parts[-1]] = value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def json_patch(target: Obj, ops: list[Obj]) -> Obj:
    """RFC 6902 JSON patch: add, remove, replace, test, copy, move."""
    doc: Any = copy.deepcopy(target)

    def split(pointer: str) -> list[str]:
        if pointer == "":
            return []
        return [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]

    def parent(d: Any, parts: list[str]) -> Any:
        for p in parts[:-1]:
            d = d[int(p)] if isinstance(d, list) else d[p]
        return d

    def get(d: Any, parts: list[str]) -> Any:
        for p in parts:
            d = d[int(p)] if isinstance(d, list) else d[p]
        return d

    def put(d: Any, parts: list[str], value: Any, insert: bool) -> None:
        par = parent(d, parts)
        last = parts[-1]
        if isinstance(par, list):
            idx = len(par) if last == "-" else int(last)
            if insert:
                par.insert(idx, value)
            else:
                par[idx] = value
        else:
            if not insert and last not in par:
                raise KeyError(last)
            par[last] = value

    def remove(d: Any, parts: list[str]) -> Any:
        par = parent(d, parts)
        last = parts[-1]
        return par.pop(int(last)) if isinstance(par, list) else par.pop(last)

    try:
        for op in ops:
            kind = op["op"]
            parts = split(op["path"])
            if kind == "add":
                put(doc, parts, copy.deepcopy(op["value"]), insert=True)
            elif kind == "remove":
                remove(doc, parts)
            elif kind == "replace":
                put(doc, parts, copy.deepcopy(op["value"]), insert=False)
            elif kind == "test":
                if get(doc, parts) != op["value"]:
                    raise ApiError(
                        422, f"the server rejected our request: test failed at {op['path']}"
                    )
            elif kind in ("copy", "move"):
                src = split(op["from"])
                value = copy.deepcopy(get(doc, src))
                if kind == "move":
                    remove(doc, src)
                put(doc, parts, value, insert=True)
            else:
                raise ApiError(400, f"unknown JSON patch operation {kind!r}")
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise ApiError(422, f"the server rejected our request: JSON patch failed: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(422, "JSON patch result is not an object")
    return doc


def _selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    for raw in filter(None, (s.strip() for s in selector.split(","))):
        if "!=" in raw:
            k, v = (x.strip() for x in raw.split("!=", 1))
            if labels.get(k) == v:
                return False
        elif "=" in raw:
            k, v = (x.strip() for x in raw.replace("==", "=").split("=", 1))
            if labels.get(k) != v:
                return False
        elif raw.startswith("!"):
            if raw[1:].strip() in labels:
                return False
        elif raw not in labels:
            return False
    return True


def _field_matches(selector: str, obj: Obj) -> bool:
    for raw in filter(None, (s.strip() for s in selector.split(","))):
        neg = "!=" in raw
        k, v = (x.strip() for x in raw.replace("!=", "=").replace("==", "=").split("=", 1))
        actual = _path_get(obj, k)
        if (str(actual) == v) == neg:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# The server


@dataclass(frozen=True, slots=True)
class RequestRecord:
    method: str
    path: str
    query: Mapping[str, str]
    status: int
    verb: str
    resource: str  # "deployments/scale", "" for discovery


@dataclass
class _Fault:
    method: str | None
    path: str
    code: int
    remaining: int
    message: str

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


@dataclass(frozen=True, slots=True)
class _Denial:
    verb: str  # "*" for any
    resource: str  # "deployments/scale", "deployments", "*"
    group: str | None
    namespace: str | None


@dataclass(slots=True)
class _Event:
    rv: int
    key: tuple[str, str]  # (group, plural)
    type: str
    obj: Obj


@dataclass
class _Route:
    rtype: ResourceType
    namespace: str | None
    name: str | None
    sub: str | None


@dataclass
class Response:
    code: int
    body: Obj | None = None
    stream: Iterator[bytes] | None = field(default=None)


class KubeServer:
    """In-memory Kubernetes API server on 127.0.0.1 (a free port, a background thread)."""

    def __init__(
        self,
        *,
        user: str = "system:serviceaccount:gemini-system:gemini",
        bookmark_interval: float = 1.0,
        default_watch_timeout: float = 1800.0,
        history_limit: int = 20_000,
        token: str | None = None,
    ) -> None:
        self.user = user
        self.bookmark_interval = bookmark_interval
        self.default_watch_timeout = default_watch_timeout
        self.history_limit = history_limit
        self.token = token  # when set, requests must carry "Authorization: Bearer <token>"
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._store: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        self._rv = 0
        self._history: list[_Event] = []
        self._compacted_rv = 0  # events with rv <= this are gone
        self._faults: list[_Fault] = []
        self._denials: list[_Denial] = []
        self._drop_generation = 0
        self._hooks: list[Callable[[str, str], None]] = []
        self._conns: set[socket.socket] = set()
        self._stopping = False
        self.log: deque[RequestRecord] = deque(maxlen=100_000)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for rtype in BUILTIN_TYPES:
            self.add_resource_type(rtype)
        for ns in ("default", "kube-system"):
            self.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> KubeServer:
        handler = type("_Handler", (_Handler,), {"kube": self})
        self._httpd = _HTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        self.close_connections()

    def close_connections(self) -> None:
        """Cut every open client connection (keep-alive ones too), as a restarting API server
        would; clients reconnect on their next request."""
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> KubeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def configuration(self) -> Any:
        """A `kubernetes.client.Configuration` pointing at this server."""
        from kubernetes import client

        cfg = client.Configuration(host=self.url)
        cfg.verify_ssl = False
        return cfg

    def api_client(self) -> Any:
        """A real `kubernetes.client.ApiClient` pointing at this server."""
        from kubernetes import client

        return client.ApiClient(self.configuration())

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        """Write a kubeconfig file whose current context points at this server."""
        p = Path(path)
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": self.token or "fake-token"}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                }
            ],
            "current-context": "fake",
        }
        p.write_text(json.dumps(doc, indent=2))  # JSON is valid YAML
        return p

    # -- resource types --------------------------------------------------------------------

    def add_resource_type(self, rtype: ResourceType) -> None:
        with self._lock:
            self._types[(rtype.group, rtype.version, rtype.plural)] = rtype
            self._store.setdefault((rtype.group, rtype.plural), {})

    def remove_resource_type(self, group: str, version: str, plural: str) -> None:
        """Stop serving a group/version/resource (e.g. an old cluster without autoscaling/v2);
        objects stored under another version of the same resource stay."""
        with self._lock:
            self._types.pop((group, version, plural), None)

    def add_resource(
        self,
        group: str,
        version: str,
        plural: str,
        kind: str,
        *,
        namespaced: bool = True,
        status: bool = False,
        scale: ScalePaths | None = None,
    ) -> ResourceType:
        rtype = ResourceType(group, version, plural, kind, namespaced, status, scale)
        self.add_resource_type(rtype)
        return rtype

    def install_keda(self) -> None:
        """Register KEDA's ScaledObject CRD (without it, keda.sh is absent from discovery)."""
        self.add_resource_type(KEDA_SCALEDOBJECTS)

    def register_crd(self, definition: Obj) -> None:
        """Store a CustomResourceDefinition and serve its resource (as `kubectl apply` would)."""
        self.put_object(definition)

    def _register_from_crd(self, definition: Obj) -> None:
        spec = definition.get("spec", {})
        names = spec.get("names", {})
        for ver in spec.get("versions", []):
            if not ver.get("served", True):
                continue
            subs = ver.get("subresources") or {}
            scale = None
            if "scale" in subs:
                s = subs["scale"]
                scale = ScalePaths(
                    s.get("specReplicasPath", ".spec.replicas"),
                    s.get("statusReplicasPath", ".status.replicas"),
                    s.get("labelSelectorPath"),
                )
            self.add_resource_type(
                ResourceType(
                    spec["group"],
                    ver["name"],
                    names["plural"],
                    names["kind"],
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                    status="status" in subs,
                    scale=scale,
                    short_names=tuple(names.get("shortNames", ())),
                )
            )

    def _type_for_kind(self, api_version: str, kind: str) -> ResourceType:
        group, _, version = api_version.rpartition("/")
        for rtype in self._types.values():
            if rtype.group == group and rtype.version == version and rtype.kind == kind:
                return rtype
        raise KeyError(f"no resource type for {api_version} {kind}")

    # -- test-side object access -------------------------------------------------------------

    def put_object(self, obj: Obj) -> Obj:
        """Create or replace an object, bypassing RBAC/faults/concurrency; returns it as stored.

        Namespaces are created on demand. `status` is taken as given.
        """
        with self._cond:
            rtype = self._type_for_kind(obj["apiVersion"], obj["kind"])
            body = copy.deepcopy(obj)
            meta = body.setdefault("metadata", {})
            ns = meta.get("namespace", "default") if rtype.namespaced else None
            if ns is not None:
                meta["namespace"] = ns
                if ("", ns) not in self._store[("", "namespaces")]:
                    self.put_object(
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                    )
            existing = self._store[(rtype.group, rtype.plural)].get((ns or "", meta["name"]))
            if existing is None:
                return self._create(rtype, ns, body)
            meta.pop("resourceVersion", None)
            return self._update(rtype, existing, body, keep_status=False)

    def get_object(
        self, api_version: str, kind: str, name: str, namespace: str | None = "default"
    ) -> Obj | None:
        with self._lock:
            rtype = self._type_for_kind(api_version, kind)
            ns = namespace if rtype.namespaced else None
            found = self._store[(rtype.group, rtype.plural)].get((ns or "", name))
            return copy.deepcopy(found) if found is not None else None

    def list_objects(self, api_version: str, kind: str, namespace: str | None = None) -> list[Obj]:
        with self._lock:
            rtype = self._type_for_kind(api_version, kind)
            return [
                copy.deepcopy(o)
                for (ns, _), o in sorted(self._store[(rtype.group, rtype.plural)].items())
                if namespace is None or ns == namespace
            ]

    def set_status(
        self, api_version: str, kind: str, name: str, namespace: str = "default", **fields: Any
    ) -> Obj:
        """Merge `fields` into the object's status (e.g. `readyReplicas=2`); bumps resourceVersion."""
        with self._cond:
            rtype = self._type_for_kind(api_version, kind)
            ns = namespace if rtype.namespaced else None
            cur = self._store[(rtype.group, rtype.plural)].get((ns or "", name))
            if cur is None:
                raise KeyError(f"{kind} {namespace}/{name} not found")
            body = copy.deepcopy(cur)
            body["status"] = merge_patch(body.get("status") or {}, fields)
            return self._update(rtype, cur, body, keep_status=False)

    def settle(self, api_version: str, kind: str, name: str, namespace: str = "default") -> Obj:
        """Finish a workload's rollout: status replicas = ready = updated = spec, generation seen."""
        obj = self.get_object(api_version, kind, name, namespace)
        if obj is None:
            raise KeyError(f"{kind} {namespace}/{name} not found")
        rtype = self._type_for_kind(api_version, kind)
        paths = rtype.scale or ScalePaths()
        n = _path_get(obj, paths.spec_replicas) or 0
        fields: dict[str, Any] = {"observedGeneration": obj["metadata"].get("generation", 1)}
        if paths.status_replicas.lstrip(".").startswith("status."):
            fields[paths.status_replicas.lstrip(".").split(".", 1)[1]] = n
        if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
            fields.update(replicas=n, readyReplicas=n, availableReplicas=n, updatedReplicas=n)
        return self.set_status(api_version, kind, name, namespace, **fields)

    def delete_object(
        self, api_version: str, kind: str, name: str, namespace: str | None = "default"
    ) -> None:
        with self._cond:
            rtype = self._type_for_kind(api_version, kind)
            ns = namespace if rtype.namespaced else None
            self._delete(rtype, ns, name)

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    # -- RBAC and faults ---------------------------------------------------------------------

    def deny(
        self,
        verb: str,
        resource: str,
        *,
        group: str | None = None,
        namespace: str | None = None,
    ) -> None:
        """Answer 403 for `verb` ("get", "update", "list", ..., "*") on `resource`
        ("deployments/scale", "leases", "*"), optionally only in one API group / namespace."""
        with self._lock:
            self._denials.append(_Denial(verb, resource, group, namespace))

    def allow_all(self) -> None:
        with self._lock:
            self._denials.clear()

    def fail_next(
        self,
        path: str,
        code: int,
        *,
        count: int = 1,
        method: str | None = None,
        message: str | None = None,
    ) -> None:
        """The next `count` requests to `path` (exact, or a prefix ending in `*`) answer `code`."""
        with self._lock:
            self._faults.append(
                _Fault(method, path, code, count, message or f"injected failure {code} for {path}")
            )

    def on_request(self, hook: Callable[[str, str], None]) -> Callable[[], None]:
        """Call `hook(method, path)` before each API request is handled (e.g. to change an
        object between a client's read and its write). Returns a function that removes it."""
        with self._lock:
            self._hooks.append(hook)

        def remove() -> None:
            with self._lock:
                if hook in self._hooks:
                    self._hooks.remove(hook)

        return remove

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def drop_watches(self) -> None:
        """Close every open watch stream abruptly (no final chunk), as a dying server would."""
        with self._cond:
            self._drop_generation += 1
            self._cond.notify_all()

    def compact(self) -> int:
        """Forget the watch history up to now: watches from an older resourceVersion get 410."""
        with self._cond:
            self._history.clear()
            self._compacted_rv = self._rv
            self._cond.notify_all()
            return self._rv

    def requests(self, method: str | None = None, path_prefix: str = "") -> list[RequestRecord]:
        return [
            r
            for r in list(self.log)
            if (method is None or r.method == method) and r.path.startswith(path_prefix)
        ]

    # -- storage core (callers hold the lock) --------------------------------------------------
    # Stored objects are never mutated in place: every write stores a new dict. So the watch
    # history, GET and LIST answers share them without copying (they are serialized later,
    # outside the lock); only objects handed to test code are copied.

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _record(self, rtype: ResourceType, type_: str, obj: Obj) -> None:
        self._history.append(_Event(self._rv, (rtype.group, rtype.plural), type_, obj))
        if len(self._history) > self.history_limit:
            drop = len(self._history) - self.history_limit
            self._compacted_rv = self._history[drop - 1].rv
            del self._history[:drop]
        self._cond.notify_all()

    def _create(self, rtype: ResourceType, ns: str | None, body: Obj) -> Obj:
        meta = body.setdefault("metadata", {})
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            else:
                raise ApiError(422, f"{rtype.kind} is invalid: metadata.name: Required value")
        name = meta["name"]
        bucket = self._store[(rtype.group, rtype.plural)]
        if (ns or "", name) in bucket:
            raise ApiError(
                409,
                f'{rtype.qualified} "{name}" already exists',
                {"name": name, "group": rtype.group, "kind": rtype.plural},
            )
        body["apiVersion"] = rtype.group_version
        body["kind"] = rtype.kind
        if ns is not None:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now_iso()
        meta["generation"] = 1
        meta["resourceVersion"] = str(self._next_rv())
        if rtype.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
            body.setdefault("spec", {}).setdefault("replicas", 1)
        bucket[(ns or "", name)] = body
        if rtype.plural == "customresourcedefinitions":
            self._register_from_crd(body)
        self._record(rtype, "ADDED", body)
        return copy.deepcopy(body)

    def _update(
        self,
        rtype: ResourceType,
        current: Obj,
        body: Obj,
        *,
        keep_status: bool,
        status_only: bool = False,
    ) -> Obj:
        meta = body.setdefault("metadata", {})
        cur_meta = current["metadata"]
        given_rv = meta.get("resourceVersion")
        if given_rv not in (None, "") and str(given_rv) != cur_meta["resourceVersion"]:
            raise ApiError(
                409,
                f'Operation cannot be fulfilled on {rtype.qualified} "{cur_meta["name"]}": the '
                "object has been modified; please apply your changes to the latest version and "
                "try again",
                {"name": cur_meta["name"], "group": rtype.group, "kind": rtype.plural},
            )
        if status_only:
            new = copy.deepcopy(current)
            if "status" in body:
                new["status"] = copy.deepcopy(body["status"])
            else:
                new.pop("status", None)
        else:
            new = copy.deepcopy(body)
            new["apiVersion"] = rtype.group_version
            new["kind"] = rtype.kind
            nmeta = new["metadata"]
            for key in ("uid", "creationTimestamp", "name", "namespace", "generation"):
                if key in cur_meta:
                    nmeta[key] = cur_meta[key]
                else:
                    nmeta.pop(key, None)
            if keep_status:
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
                else:
                    new.pop("status", None)
        new["metadata"]["resourceVersion"] = cur_meta["resourceVersion"]

        def content(o: Obj, *skip: str) -> Obj:
            return {k: v for k, v in o.items() if k not in skip}

        if new == current:
            return copy.deepcopy(current)  # a no-op write does not bump resourceVersion
        spec_skip = ("metadata", "status") if rtype.status else ("metadata",)
        if content(new, *spec_skip) != content(current, *spec_skip):
            new["metadata"]["generation"] = int(cur_meta.get("generation", 1)) + 1
        new["metadata"]["resourceVersion"] = str(self._next_rv())
        ns = cur_meta.get("namespace")
        self._store[(rtype.group, rtype.plural)][(ns or "", cur_meta["name"])] = new
        if rtype.plural == "customresourcedefinitions":
            self._register_from_crd(new)
        self._record(rtype, "MODIFIED", new)
        return copy.deepcopy(new)

    def _delete(self, rtype: ResourceType, ns: str | None, name: str) -> Obj:
        bucket = self._store[(rtype.group, rtype.plural)]
        obj = bucket.pop((ns or "", name), None)
        if obj is None:
            raise self._not_found(rtype, name)
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self._next_rv())
        self._record(rtype, "DELETED", obj)
        if rtype.plural == "namespaces":
            for (group, plural), objs in self._store.items():
                for key in [k for k in objs if k[0] == name]:
                    gone = copy.deepcopy(objs.pop(key))
                    gone["metadata"]["resourceVersion"] = str(self._next_rv())
                    rt = next(
                        t for t in self._types.values() if (t.group, t.plural) == (group, plural)
                    )
                    self._record(rt, "DELETED", gone)
        return obj

    @staticmethod
    def _not_found(rtype: ResourceType, name: str) -> ApiError:
        return ApiError(
            404,
            f'{rtype.qualified} "{name}" not found',
            {"name": name, "group": rtype.group, "kind": rtype.plural},
        )

    # -- scale views ---------------------------------------------------------------------------

    @staticmethod
    def _scale_view(rtype: ResourceType, obj: Obj) -> Obj:
        assert rtype.scale is not None
        paths = rtype.scale
        meta = obj["metadata"]
        if paths.label_selector is not None:
            selector = _path_get(obj, paths.label_selector) or ""
        else:
            # built-in workloads: spec.selector.matchLabels; a CRD without labelSelectorPath: none
            labels = _path_get(obj, ".spec.selector.matchLabels") if rtype.group == "apps" else None
            labels = labels if isinstance(labels, dict) else {}
            selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        status: Obj = {"replicas": int(_path_get(obj, paths.status_replicas) or 0)}
        if selector:
            status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta["name"],
                **({"namespace": meta["namespace"]} if "namespace" in meta else {}),
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
                "creationTimestamp": meta["creationTimestamp"],
            },
            "spec": {"replicas": int(_path_get(obj, paths.spec_replicas) or 0)},
            "status": status,
        }

    # -- request handling ----------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Response, RequestRecord]:
        parts = urlsplit(raw_path)
        path = parts.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        verb, resource = method.lower(), ""
        with self._lock:
            hooks = list(self._hooks)
        for hook in hooks:
            hook(method, path)
        try:
            with self._lock:
                route = self._route(path) if self._is_resource_path(path) else None
                if route is not None:
                    verb = self._verb(method, route, query)
                    resource = route.rtype.plural + (f"/{route.sub}" if route.sub else "")
                for fault in self._faults:
                    if fault.remaining > 0 and fault.matches(method, path):
                        fault.remaining -= 1
                        self._faults = [f for f in self._faults if f.remaining > 0]
                        raise ApiError(fault.code, fault.message)
                if (
                    self.token is not None
                    and headers.get("authorization") != f"Bearer {self.token}"
                ):
                    raise ApiError(401, "Unauthorized")
                if route is None:
                    resp = Response(200, self._discovery(path))
                else:
                    self._authorize(verb, route)
                    resp = self._dispatch(method, verb, route, query, headers, body)
        except ApiError as err:
            resp = Response(err.code, err.status())
        record = RequestRecord(method, path, query, resp.code, verb, resource)
        self.log.append(record)
        return resp, record

    @staticmethod
    def _is_resource_path(path: str) -> bool:
        parts = path.strip("/").split("/")
        return (parts[0] == "api" and len(parts) > 2) or (parts[0] == "apis" and len(parts) > 3)

    def _route(self, path: str) -> _Route:
        parts = path.strip("/").split("/")
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        else:
            group, version, rest = parts[1], parts[2], parts[3:]
        namespace: str | None = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and (group, version, rest[2]) in self._types
            and self._types[(group, version, rest[2])].namespaced
        ):
            namespace, rest = rest[1], rest[2:]
        rtype = self._types.get((group, version, rest[0]))
        if rtype is None or len(rest) > 3:
            raise ApiError(404, f"the server could not find the requested resource ({path})")
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) == 3 else None
        if sub is not None and not (
            (sub == "status" and rtype.status) or (sub == "scale" and rtype.scale is not None)
        ):
            raise ApiError(404, f"the server could not find the requested resource ({path})")
        if rtype.namespaced and name is not None and namespace is None:
            raise ApiError(404, f"the server could not find the requested resource ({path})")
        return _Route(rtype, namespace, name, sub)

    @staticmethod
    def _verb(method: str, route: _Route, query: Mapping[str, str]) -> str:
        watch = query.get("watch", "").lower() in ("true", "1")
        if method == "GET":
            if route.name is None:
                return "watch" if watch else "list"
            return "get"
        return {
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if route.name is not None else "deletecollection",
        }.get(method, method.lower())

    def _authorize(self, verb: str, route: _Route) -> None:
        rtype = route.rtype
        resource = rtype.plural + (f"/{route.sub}" if route.sub else "")
        for d in self._denials:
            if d.verb not in ("*", verb):
                continue
            if d.resource not in ("*", resource):
                continue
            if d.group is not None and d.group != rtype.group:
                continue
            if d.namespace is not None and d.namespace != route.namespace:
                continue
            where = (
                f'in the namespace "{route.namespace}"'
                if route.namespace is not None
                else "at the cluster scope"
            )
            subject = f'{rtype.qualified} "{route.name}"' if route.name else rtype.qualified
            raise ApiError(
                403,
                f'{subject} is forbidden: User "{self.user}" cannot {verb} resource '
                f'"{resource}" in API group "{rtype.group}" {where}',
                {"name": route.name or "", "group": rtype.group, "kind": resource},
            )

    def _discovery(self, path: str) -> Obj:
        if path == "/version":
            return {
                "major": "1",
                "minor": "31",
                "gitVersion": "v1.31.0-gemini-fake",
                "platform": "linux/amd64",
            }
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            groups: dict[str, list[str]] = {}
            for rtype in self._types.values():
                if rtype.group:
                    versions = groups.setdefault(rtype.group, [])
                    if rtype.version not in versions:
                        versions.append(rtype.version)
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group_doc(g, vs) for g, vs in sorted(groups.items())],
            }
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2:
            vs = [t.version for t in self._types.values() if t.group == parts[1]]
            if not vs:
                raise ApiError(404, f"the server could not find the requested resource ({path})")
            return self._group_doc(parts[1], list(dict.fromkeys(vs)))
        if (parts[0] == "api" and len(parts) == 2) or (parts[0] == "apis" and len(parts) == 3):
            group = "" if parts[0] == "api" else parts[1]
            version = parts[-1]
            types = [t for t in self._types.values() if (t.group, t.version) == (group, version)]
            if not types:
                raise ApiError(404, f"the server could not find the requested resource ({path})")
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": types[0].group_version,
                "resources": [r for t in types for r in t.discovery()],
            }
        if path in ("/healthz", "/readyz", "/livez"):
            return {"status": "ok"}
        raise ApiError(404, f"the server could not find the requested resource ({path})")

    @staticmethod
    def _group_doc(group: str, versions: list[str]) -> Obj:
        vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": vs,
            "preferredVersion": vs[0],
        }

    def _dispatch(
        self,
        method: str,
        verb: str,
        route: _Route,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        raw: bytes,
    ) -> Response:
        rtype = route.rtype
        bucket = self._store[(rtype.group, rtype.plural)]
        if (
            rtype.namespaced
            and route.namespace is not None
            and verb == "create"
            and ("", route.namespace) not in self._store[("", "namespaces")]
        ):
            raise ApiError(404, f'namespaces "{route.namespace}" not found')
        if verb == "list":
            return Response(200, self._list(route, query))
        if verb == "watch":
            return Response(200, stream=self._watch(route, query))
        if verb == "create":
            body = self._json(raw)
            if route.name is not None:
                raise ApiError(
                    405, "the server does not allow this method on the requested resource"
                )
            return Response(201, self._create(rtype, route.namespace, body))
        assert route.name is not None or verb == "deletecollection"
        key = (route.namespace or "", route.name or "")
        current = bucket.get(key)
        if verb == "deletecollection":
            for ns, name in [k for k in bucket if route.namespace in (None, k[0])]:
                self._delete(rtype, ns or None, name)
            return Response(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
        if current is None:
            raise self._not_found(rtype, route.name or "")
        if verb == "get":
            if route.sub == "scale":
                return Response(200, self._scale_view(rtype, current))
            return Response(200, current)
        if verb == "delete":
            gone = self._delete(rtype, route.namespace, route.name or "")
            return Response(
                200,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": route.name,
                        "group": rtype.group,
                        "kind": rtype.plural,
                        "uid": gone["metadata"]["uid"],
                    },
                },
            )
        # update / patch
        if route.sub == "scale":
            view = self._scale_view(rtype, current)
            if verb == "update":
                new_view = self._json(raw)
            else:
                new_view = self._patched(view, raw, headers)
                new_view.setdefault("metadata", {})
                patch_rv = self._patch_rv(raw, headers)
                new_view["metadata"]["resourceVersion"] = patch_rv
            replicas = (new_view.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise ApiError(
                    422,
                    f'Scale.autoscaling "{route.name}" is invalid: spec.replicas: Invalid value: '
                    f"{replicas!r}: must be greater than or equal to 0",
                )
            assert rtype.scale is not None
            body = copy.deepcopy(current)
            _path_set(body, rtype.scale.spec_replicas, replicas)
            body["metadata"]["resourceVersion"] = (new_view.get("metadata") or {}).get(
                "resourceVersion"
            )
            updated = self._update(rtype, current, body, keep_status=False)
            return Response(200, self._scale_view(rtype, updated))
        if verb == "update":
            body = self._json(raw)
        else:
            body = self._patched(current, raw, headers)
            body["metadata"]["resourceVersion"] = self._patch_rv(raw, headers)
        body_meta = body.get("metadata") or {}
        if body_meta.get("name") not in (None, route.name):
            raise ApiError(400, "the name of the object does not match the name on the URL")
        status_only = route.sub == "status"
        updated = self._update(
            rtype,
            current,
            body,
            keep_status=rtype.status and not status_only,
            status_only=status_only,
        )
        return Response(200, updated)

    @staticmethod
    def _json(raw: bytes) -> Obj:
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return body

    @staticmethod
    def _patched(current: Obj, raw: bytes, headers: Mapping[str, str]) -> Obj:
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            patch = json.loads(raw or b"null")
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"the patch is not valid JSON: {exc}") from None
        if ctype == "application/json-patch+json":
            if not isinstance(patch, list):
                raise ApiError(400, "a JSON patch must be a list of operations")
            return json_patch(current, patch)
        if ctype in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ):
            if not isinstance(patch, dict):
                raise ApiError(400, "a merge patch must be a JSON object")
            result = merge_patch(copy.deepcopy(current), patch)
            assert isinstance(result, dict)
            result.setdefault("metadata", {})
            return result
        raise ApiError(
            415,
            f"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {ctype!r})",
        )

    @staticmethod
    def _patch_rv(raw: bytes, headers: Mapping[str, str]) -> str | None:
        """A resourceVersion inside a merge patch is a precondition, as on the real server."""
        try:
            patch = json.loads(raw or b"null")
        except json.JSONDecodeError:
            return None
        if isinstance(patch, dict):
            rv = (patch.get("metadata") or {}).get("resourceVersion")
            return str(rv) if rv else None
        return None

    def _matches(self, route: _Route, query: Mapping[str, str], obj: Obj) -> bool:
        meta = obj.get("metadata", {})
        if route.namespace is not None and meta.get("namespace") != route.namespace:
            return False
        if "labelSelector" in query and not _selector_matches(
            query["labelSelector"], meta.get("labels") or {}
        ):
            return False
        return not ("fieldSelector" in query and not _field_matches(query["fieldSelector"], obj))

    def _list(self, route: _Route, query: Mapping[str, str]) -> Obj:
        rtype = route.rtype
        items = [
            o
            for _, o in sorted(self._store[(rtype.group, rtype.plural)].items())
            if self._matches(route, query, o)
        ]
        meta: Obj = {"resourceVersion": str(self._rv)}
        limit = int(query.get("limit", "0") or 0)
        start = int(query.get("continue", "0") or 0)
        if limit > 0:
            page = items[start : start + limit]
            if start + limit < len(items):
                meta["continue"] = str(start + limit)
                meta["remainingItemCount"] = len(items) - start - limit
            items = page
        if rtype in BUILTIN_TYPES:
            # As the real API server does (kubernetes/kubernetes#3030): items of a built-in list
            # carry no apiVersion/kind; custom resources' items keep theirs.
            items = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in items]
        return {
            "kind": f"{rtype.kind}List",
            "apiVersion": rtype.group_version,
            "metadata": meta,
            "items": items,
        }

    def _watch(self, route: _Route, query: Mapping[str, str]) -> Iterator[bytes]:
        """Called with the lock held; returns a generator that takes the lock per step."""
        rtype = route.rtype
        key = (rtype.group, rtype.plural)
        rv_param = query.get("resourceVersion", "")
        bookmarks = query.get("allowWatchBookmarks", "").lower() in ("true", "1")
        timeout = float(query.get("timeoutSeconds", self.default_watch_timeout))
        generation = self._drop_generation
        initial: list[Obj] = []
        if rv_param in ("", "0"):
            since = self._rv
            initial = [
                {"type": "ADDED", "object": o}
                for _, o in sorted(self._store[key].items())
                if self._matches(route, query, o)
            ]
        else:
            try:
                since = int(rv_param)
            except ValueError:
                raise ApiError(400, f"invalid resourceVersion {rv_param!r}") from None
            if since < self._compacted_rv:
                gone = status_object(
                    410, f"too old resource version: {since} ({self._compacted_rv + 1})"
                )
                return iter([json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n"])

        def events() -> Iterator[bytes]:
            deadline = time.monotonic() + timeout
            last_sent = since
            next_bookmark = time.monotonic() + self.bookmark_interval
            for ev in initial:
                yield json.dumps(ev).encode() + b"\n"
            while True:
                out: list[bytes] = []
                with self._cond:
                    if self._stopping or generation != self._drop_generation:
                        raise _DropStream()
                    expired = last_sent < self._compacted_rv
                if expired:
                    gone = status_object(410, f"too old resource version: {last_sent}")
                    yield json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n"
                    return
                with self._cond:
                    for ev in self._events_after(last_sent):
                        last_sent = ev.rv
                        if ev.key == key and self._matches(route, query, ev.obj):
                            out.append(
                                json.dumps({"type": ev.type, "object": ev.obj}).encode() + b"\n"
                            )
                    now = time.monotonic()
                    if not out and bookmarks and now >= next_bookmark:
                        out.append(
                            json.dumps(
                                {
                                    "type": "BOOKMARK",
                                    "object": {
                                        "kind": rtype.kind,
                                        "apiVersion": rtype.group_version,
                                        "metadata": {"resourceVersion": str(self._rv)},
                                    },
                                }
                            ).encode()
                            + b"\n"
                        )
                        last_sent = max(last_sent, self._rv)
                        next_bookmark = now + self.bookmark_interval
                    if not out:
                        if now >= deadline:
                            return
                        wait = min(deadline, next_bookmark if bookmarks else deadline) - now
                        self._cond.wait(timeout=max(0.0, min(wait, 0.25)))
                        continue
                yield from out

        return events()

    def _events_after(self, rv: int) -> list[_Event]:
        hist = self._history
        lo, hi = 0, len(hist)
        while lo < hi:
            mid = (lo + hi) // 2
            if hist[mid].rv <= rv:
                lo = mid + 1
            else:
                hi = mid
        return hist[lo:]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # bursts of new connections from worker pools and watches


class _DropStream(Exception):
    """Raised inside a watch stream to cut the connection without a final chunk."""


class _Handler(BaseHTTPRequestHandler):
    kube: KubeServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle + delayed ACK add
        # ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.kube._lock:
            self.kube._conns.add(self.connection)

    def finish(self) -> None:
        with self.kube._lock:
            self.kube._conns.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            resp, _ = self.kube.handle(self.command, self.path, headers, body)
        except Exception as exc:  # a bug in the fake: answer 500 rather than hang the client
            resp = Response(500, status_object(500, f"fake server error: {exc!r}"))
        if resp.stream is not None:
            self._stream(resp.stream)
            return
        data = json.dumps(resp.body).encode()
        self.send_response(resp.code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, chunks: Iterator[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        try:
            for chunk in chunks:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except _DropStream:
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_PATCH = _serve
    do_DELETE = _serve


# ---------------------------------------------------------------------------------------------
# pytest fixture


@pytest.fixture
def kube_server() -> Iterator[KubeServer]:
    """A started `KubeServer`, stopped after the test. Import it into a test module to use it."""
    server = KubeServer(bookmark_interval=0.2).start()
    try:
        yield server
    finally:
        server.stop()


__all__ = [
    "KEDA_SCALEDOBJECTS",
    "ApiError",
    "KubeServer",
    "RequestRecord",
    "ResourceType",
    "ScalePaths",
    "crd",
    "deployment",
    "hpa",
    "kube_server",
    "scaled_object",
    "statefulset",
]
