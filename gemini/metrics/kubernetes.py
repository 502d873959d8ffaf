"""`source.kubernetes`: the replicas of another Kubernetes workload as a metric.

Reads the workload's `/scale` subresource (any kind that has one, resolved through API
discovery): `Current` is `status.replicas`, `Desired` is `spec.replicas`. The same workload read
by several policies in one cycle is fetched once. Every failure becomes an Observation with a
stable kind (not_found, permission, unavailable, deadline, invalid, error); nothing raises.
Must not import `gemini.scalers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kubernetes import client

from gemini import kubeclient
from gemini.errors import MetricError
from gemini.metrics import MetricRequest
from gemini.policy.spec import ReplicaField
from gemini.series import Observation


class KubernetesSource:
    """Replicas of a workload. `api_client` defaults to `gemini.kubeclient.api_client()`."""

    def __init__(
        self,
        api_client: client.ApiClient | None = None,
        *,
        timeout_seconds: float = kubeclient.DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.api: Any = api_client if api_client is not None else kubeclient.api_client()
        self.discovery = kubeclient.Discovery(self.api)
        self.timeout = timeout_seconds

    def fetch(self, requests: Sequence[MetricRequest], now: datetime) -> list[Observation]:
        scales: dict[tuple[str, str, str, str], dict[str, Any] | MetricError] = {}
        out: list[Observation] = []
        for req in requests:
            name = req.metric.name
            cfg = req.metric.source.kubernetes
            if cfg is None:
                out.append(Observation.failed(name, "invalid", "not a kubernetes metric"))
                continue
            namespace = cfg.namespace or req.namespace
            key = (cfg.api_version, cfg.kind, namespace, cfg.name)
            if key not in scales:
                try:
                    scales[key] = self._scale(cfg.api_version, cfg.kind, namespace, cfg.name)
                except MetricError as err:
                    scales[key] = err
            got = scales[key]
            if isinstance(got, MetricError):
                out.append(Observation.failed(name, got.kind, str(got)))
                continue
            part = "spec" if cfg.replicas is ReplicaField.DESIRED else "status"
            value = (got.get(part) or {}).get("replicas") or 0
            out.append(Observation.of(name, now, float(value)))
        return out

    def close(self) -> None:
        self.api.close()

    def _scale(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        what = f"{kind} {namespace}/{name}"
        try:
            res = self.discovery.resolve(api_version, kind)
        except kubeclient.UnknownKind as exc:
            raise MetricError("not_found", f"{what}: {exc}") from None
        except Exception as exc:
            err = kubeclient.describe(exc)
            raise MetricError(err.kind, f"{what}: discovery failed: {err.message}") from None
        if "scale" not in res.subresources:
            raise MetricError("invalid", f"{what}: {res.qualified} has no /scale subresource")
        try:
            out = kubeclient.request(
                self.api, "GET", res.path(namespace, name, "scale"), timeout=self.timeout
            )
        except Exception as exc:
            err = kubeclient.describe(exc)
            if err.code == 404:
                raise MetricError("not_found", f"{what} not found") from None
            if err.code == 403:
                group = res.group or "core"
                raise MetricError(
                    "permission",
                    f"cannot get {res.plural}/scale in namespace {namespace}: grant get on "
                    f"{group} {res.plural}/scale ({err.message})",
                ) from None
            raise MetricError(
                err.kind, f"{what}: {err.message}", retryable=err.kind == "unavailable"
            ) from None
        if not isinstance(out, dict):
            raise MetricError("invalid", f"{what}: /scale answered {out!r}")
        return out
