"""Kubernetes Events about policies, deduplicated the way client-go's recorder does it.

Owns: creating `core/v1` Events (`SuccessfulRescale`, `FailedGetScale`, `FailedRescale`,
`FailedGetMetrics`, `SpecInvalid`, `TargetConflict`, ...) and, for a repeat of the same
(object, type, reason, message), bumping `count` and `lastTimestamp` of the existing Event instead
of creating a new one. A repeat is also rate-limited (at most one API call per key per
`min_interval_seconds`; skipped repeats are folded into the next bump). Failures to record are
logged, never raised: events are best effort. Imports the kubernetes client; no metric source or
scaler.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gemini import kubeclient
from gemini.clock import Clock, iso
from gemini.policy.spec import API_VERSION, KIND

log = logging.getLogger(__name__)

COMPONENT = "gemini-controller"


@dataclass(slots=True)
class _Seen:
    name: str
    namespace: str
    count: int
    last_sent: datetime
    pending: int = 0


class EventRecorder:
    def __init__(
        self,
        core_api: Any,
        clock: Clock,
        *,
        host: str = "",
        min_interval_seconds: float = 10.0,
        max_keys: int = 4096,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._api = core_api
        self._clock = clock
        self._host = host
        self._min_interval = min_interval_seconds
        self._max_keys = max_keys
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str, str, str], _Seen] = OrderedDict()
        self.calls = 0

    def emit(
        self,
        namespace: str,
        name: str,
        uid: str | None,
        event_type: str,
        reason: str,
        message: str,
    ) -> None:
        """Record an event about the ScalingPolicy `namespace/name` (best effort)."""
        now = self._clock.now()
        key = (f"{namespace}/{name}/{uid or ''}", event_type, reason, message)
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None:
                self._seen.move_to_end(key)
                if (now - seen.last_sent).total_seconds() < self._min_interval:
                    seen.pending += 1
                    return
                seen.count += 1 + seen.pending
                seen.pending = 0
                seen.last_sent = now
                count, ev_name = seen.count, seen.name
            else:
                count, ev_name = 1, _event_name(name, key, now)
                self._seen[key] = _Seen(ev_name, namespace, 1, now)
                while len(self._seen) > self._max_keys:
                    self._seen.popitem(last=False)
        try:
            self._send(namespace, name, uid, event_type, reason, message, ev_name, count, now)
        except Exception as exc:
            log.warning("recording event %s/%s failed: %s", namespace, reason, exc)

    def _send(
        self,
        namespace: str,
        name: str,
        uid: str | None,
        event_type: str,
        reason: str,
        message: str,
        ev_name: str,
        count: int,
        now: datetime,
    ) -> None:
        from kubernetes.client.exceptions import ApiException

        self.calls += 1
        stamp = iso(now)
        if count > 1:
            patch = {"count": count, "lastTimestamp": stamp}
            try:
                kubeclient.request(
                    self._api.api_client,
                    "PATCH",
                    f"/api/v1/namespaces/{namespace}/events/{ev_name}",
                    patch,
                    content_type="application/merge-patch+json",
                    timeout=self._timeout,
                )
                return
            except ApiException as exc:
                if exc.status != 404:
                    raise
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": ev_name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": name,
                "namespace": namespace,
                **({"uid": uid} if uid else {}),
            },
            "type": event_type,
            "reason": reason,
            "message": message[:1024],
            "count": count,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": COMPONENT, **({"host": self._host} if self._host else {})},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._host or COMPONENT,
        }
        try:
            # The client's REST layer with a plain dict (the typed method would build a V1Event
            # from the answer, which nobody reads).
            kubeclient.request(
                self._api.api_client,
                "POST",
                f"/api/v1/namespaces/{namespace}/events",
                body,
                timeout=self._timeout,
            )
        except ApiException as exc:
            if exc.status != 409:
                raise


def _event_name(name: str, key: tuple[str, str, str, str], first: datetime) -> str:
    """Unique per first occurrence (as client-go's `<name>.<hex nanoseconds>`): a recorder that
    does not remember an Event (a restart, a failover, a key pushed out of its memory) creates a
    new one instead of colliding with the old one's name and losing the occurrence."""
    digest = hashlib.sha256("\x00".join(key).encode()).hexdigest()[:10]
    micros = int(first.timestamp() * 1_000_000)
    return f"{name[:200]}.{digest}.{micros:x}"
