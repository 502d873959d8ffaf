"""`PubSubSink`: one JSON message per applied decision on a Pub/Sub topic, for downstream
consumers (like the Spanner autoscaler's downstream messages).

Message data is `Decision.to_dict()` as UTF-8 JSON; the ordering key is the policy
("namespace/name"), so a consumer sees one policy's decisions in order; attributes carry
`policy`, `mode`, `target`, `outcome` for subscription filters. Publishing is asynchronous (the
client batches in its own threads); a failed publish is counted and logged, and the ordering key
is resumed on the next decision so later ones still go out.
Endpoint: `GEMINI_PUBSUB_ENDPOINT=host:port` (plaintext, anonymous credentials) or the client's
usual `PUBSUB_EMULATOR_HOST`; otherwise Google's endpoint with application default credentials.
Must not import `gemini.metrics`, `gemini.scalers` or `gemini.dashboard`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from concurrent.futures import Future
from typing import Any

from gemini.policy.decision import Decision

log = logging.getLogger("gemini.store.pubsub")

TOPIC_RE = re.compile(r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/[A-Za-z][\w.~+%-]{2,254}$")
ENDPOINT_ENV = "GEMINI_PUBSUB_ENDPOINT"


def make_publisher(endpoint: str | None = None) -> Any:
    """A `PublisherClient` with message ordering on, honouring the endpoint overrides."""
    from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

    options = pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    batch = pubsub_v1.types.BatchSettings(max_messages=100, max_latency=0.05)
    endpoint = endpoint or os.environ.get(ENDPOINT_ENV)
    if endpoint:
        import grpc
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

        transport = PublisherGrpcTransport(channel=grpc.insecure_channel(endpoint))
        return pubsub_v1.PublisherClient(
            batch_settings=batch, publisher_options=options, transport=transport
        )
    return pubsub_v1.PublisherClient(batch_settings=batch, publisher_options=options)


class PubSubSink:
    """`DecisionSink` publishing applied decisions (all decisions with `only_applied=False`)."""

    def __init__(
        self,
        topic: str,
        *,
        endpoint: str | None = None,
        publisher: Any = None,
        only_applied: bool = True,
    ) -> None:
        if not TOPIC_RE.match(topic):
            raise ValueError(f"pubsub topic {topic!r}: expected projects/PROJECT/topics/TOPIC")
        self.topic = topic
        self.only_applied = only_applied
        self.publisher = publisher if publisher is not None else make_publisher(endpoint)
        self._lock = threading.Lock()
        self._pending: set[Future[str]] = set()
        self.published = 0
        self.failed = 0
        self.last_error: str | None = None

    def record(self, decision: Decision) -> None:
        if self.only_applied and not decision.applied:
            return
        data = json.dumps(decision.to_dict(), separators=(",", ":")).encode()
        attrs = {
            "policy": decision.policy,
            "mode": decision.mode,
            "target": decision.target or "",
            "outcome": decision.outcome or "",
        }
        try:
            fut = self._publish(decision.policy, data, attrs)
        except Exception as exc:  # e.g. the publisher was stopped
            self._failed(decision.policy, exc)
            return
        with self._lock:
            self._pending.add(fut)
        fut.add_done_callback(lambda f: self._done(f, decision.policy))

    def _publish(self, key: str, data: bytes, attrs: dict[str, str]) -> Future[str]:
        from google.cloud.pubsub_v1.publisher.exceptions import (
            PublishToPausedOrderingKeyException,
        )

        fut: Future[str] = self.publisher.publish(self.topic, data, ordering_key=key, **attrs)
        if fut.done() and isinstance(fut.exception(), PublishToPausedOrderingKeyException):
            # an earlier publish with this key failed and the client paused the key: resume it
            self.publisher.resume_publish(self.topic, key)
            fut = self.publisher.publish(self.topic, data, ordering_key=key, **attrs)
        return fut

    def _done(self, fut: Future[str], key: str) -> None:
        with self._lock:
            self._pending.discard(fut)
        exc = fut.exception()
        if exc is None:
            with self._lock:
                self.published += 1
            return
        self._failed(key, exc)

    def _failed(self, key: str, exc: BaseException) -> None:
        with self._lock:
            self.failed += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
        log.warning("pubsub publish to %s failed for %s: %s", self.topic, key, exc)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for every publish started so far; False on timeout."""
        from concurrent.futures import wait

        with self._lock:
            pending = list(self._pending)
        _done, not_done = wait(pending, timeout=timeout)
        return not not_done

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        self.publisher.stop()
