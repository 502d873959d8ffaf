"""Kubernetes connection helpers shared by the scaler, the metric source and the controller.

Owns: building a `kubernetes.client.ApiClient` (explicit host URL for local servers and tests,
a kubeconfig file, or the in-cluster service account), resolving `apiVersion` + `kind` to a
resource through API discovery (cached), plain JSON requests on any API path (for `/scale` of any
kind, including the core group), and turning `ApiException` into a short, stable description.
Shell code: imports the `kubernetes` client; must not import `gemini.metrics`,
`gemini.scalers` or `gemini.controller`.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes import config as _config

config: Any = _config  # untyped module

DEFAULT_TIMEOUT_SECONDS = 10.0


def api_client(
    *,
    host: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    token: str | None = None,
) -> client.ApiClient:
    """An `ApiClient` for, in order of preference: an explicit `host` URL (plain HTTP for tests),
    a `kubeconfig` file, the in-cluster service account (when running in a Pod), or the default
    kubeconfig (`$KUBECONFIG` / `~/.kube/config`)."""
    cfg = client.Configuration()
    if host is not None:
        cfg.host = host.rstrip("/")
        if token is not None:
            cfg.api_key = {"authorization": f"Bearer {token}"}
        if host.startswith("http://"):
            cfg.verify_ssl = False
    elif kubeconfig is not None:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)
    else:
        config.load_kube_config(context=context, client_configuration=cfg)
    return client.ApiClient(cfg)


def default_namespace(kubeconfig: str | None = None) -> str:
    """The namespace of the current kubeconfig context, or the Pod's namespace, or `default`."""
    sa_ns = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(sa_ns):
        with open(sa_ns) as fh:
            return fh.read().strip() or "default"
    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except Exception:
        return "default"
    ns = (active or {}).get("context", {}).get("namespace")
    return str(ns) if ns else "default"


# ---------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True, slots=True)
class KubeError:
    """What an API call's failure means: HTTP `code` (0: no answer), the Status `reason`
    (`NotFound`, `Forbidden`, `Conflict`, ...) and the server's message."""

    code: int
    reason: str
    message: str

    @property
    def kind(self) -> str:
        """A metric-error kind: not_found, permission, unavailable, deadline, quota, invalid, error."""
        if self.code == 404:
            return "not_found"
        if self.code in (401, 403):
            return "permission"
        if self.code == 429:
            return "quota"
        if self.code in (504,) or self.reason == "Timeout":
            return "deadline"
        if self.code in (400, 422):
            return "invalid"
        if self.code == 0 or self.code >= 500:
            return "unavailable"
        return "error"


def describe(exc: BaseException) -> KubeError:
    """Turn an `ApiException` (or a connection error) into a `KubeError`."""
    if isinstance(exc, client.ApiException):
        code = int(exc.status or 0)
        reason = str(exc.reason or "")
        message = ""
        body = exc.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        if isinstance(body, str) and body:
            try:
                status = json.loads(body)
            except ValueError:
                message = body[:300]
            else:
                if isinstance(status, dict):
                    reason = str(status.get("reason") or reason)
                    message = str(status.get("message") or "")
        return KubeError(
            code, reason or "Unknown", message or f"HTTP {code} {exc.reason or ''}".strip()
        )
    return KubeError(0, "Unavailable", f"{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------------------
# Raw JSON requests


def request(
    api: client.ApiClient,
    method: str,
    path: str,
    body: Any = None,
    *,
    query: dict[str, str] | None = None,
    content_type: str = "application/json",
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Any:
    """One JSON request on an API path through the client's own REST layer (auth, TLS, proxy).

    Raises `kubernetes.client.ApiException` on a non-2xx answer, like the typed API methods.
    """
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    method_, url, headers_, body_, post = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=list((query or {}).items()),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    resp: Any = api.call_api(method_, url, headers_, body_, post, _request_timeout=timeout)
    resp.read()
    if not 200 <= resp.status <= 299:
        raise client.ApiException(http_resp=resp)
    if not resp.data:
        return None
    return json.loads(resp.data)


# ---------------------------------------------------------------------------------------------
# Discovery


@dataclass(frozen=True, slots=True)
class Resource:
    """A served resource type: `plural` under `group`/`version`, and its subresources."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    subresources: frozenset[str]

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`deployments.apps` (`replicationcontrollers` for the core group)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
            if sub is not None:
                base += f"/{sub}"
        return base


class UnknownKind(LookupError):
    """The API server does not serve this apiVersion/kind (yet)."""


class Discovery:
    """Resolves `apiVersion` + `kind` to a `Resource` by reading `/api/v1` or `/apis/<g>/<v>`.

    Found resources are cached for the life of the object (until `forget`); misses are not (a
    CRD may be installed later). Thread-safe.
    """

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._cache: dict[tuple[str, str], Resource] = {}
        self._lock = threading.Lock()

    def resolve(self, api_version: str, kind: str) -> Resource:
        key = (api_version, kind)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        for res in self._fetch(api_version):
            with self._lock:
                self._cache[(api_version, res.kind)] = res
        with self._lock:
            hit = self._cache.get(key)
        if hit is None:
            raise UnknownKind(f"the API server serves no kind {kind!r} in {api_version}")
        return hit

    def forget(self, api_version: str, kind: str) -> None:
        """Drop a cached resource, so the next `resolve` reads discovery again (e.g. a CRD may
        gain a scale subresource)."""
        with self._lock:
            self._cache.pop((api_version, kind), None)

    def served(self, api_version: str) -> bool:
        """Whether the group/version is served at all (e.g. is KEDA installed?)."""
        try:
            self._fetch(api_version)
        except UnknownKind:
            return False
        return True

    def _fetch(self, api_version: str) -> list[Resource]:
        group, _, version = api_version.rpartition("/")
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            doc = request(self._api, "GET", path)
        except client.ApiException as exc:
            if exc.status == 404:
                raise UnknownKind(f"the API server does not serve {api_version}") from None
            raise
        entries = doc.get("resources", []) if isinstance(doc, dict) else []
        subs: dict[str, set[str]] = {}
        for entry in entries:
            name = str(entry.get("name", ""))
            if "/" in name:
                parent, _, sub = name.partition("/")
                subs.setdefault(parent, set()).add(sub)
        out = []
        for entry in entries:
            name = str(entry.get("name", ""))
            if "/" in name or not name:
                continue
            out.append(
                Resource(
                    group=group,
                    version=version,
                    plural=name,
                    kind=str(entry.get("kind", "")),
                    namespaced=bool(entry.get("namespaced", True)),
                    subresources=frozenset(subs.get(name, set())),
                )
            )
        return out
