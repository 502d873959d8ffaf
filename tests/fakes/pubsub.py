"""In-process `google.pubsub.v1.Publisher` gRPC server on 127.0.0.1 for tests.

Built from the request/response types google-cloud-pubsub ships (`google.pubsub_v1.types`), served
with grpc's generic handlers, so the real `PublisherClient` talks real gRPC to it. Records every
published message; `fail_next(n, code)` makes the next n Publish calls fail.
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.pubsub_v1.types import PublishRequest, PublishResponse, Topic

SERVICE = "google.pubsub.v1.Publisher"


@dataclass
class Received:
    topic: str
    data: bytes
    ordering_key: str
    attributes: dict[str, str]
    message_id: str


@dataclass
class FakePublisher:
    topics: set[str] = field(default_factory=set)
    messages: list[Received] = field(default_factory=list)
    calls: int = 0
    _fail: list[grpc.StatusCode] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: Any = None
    port: int = 0

    def fail_next(self, n: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        with self._lock:
            self._fail.extend([code] * n)

    def _publish(self, request: PublishRequest, context: grpc.ServicerContext) -> PublishResponse:
        with self._lock:
            self.calls += 1
            if self._fail:
                context.abort(self._fail.pop(0), "injected failure")
            if request.topic not in self.topics:
                context.abort(
                    grpc.StatusCode.NOT_FOUND, f"Resource not found (resource={request.topic})."
                )
            ids = []
            for m in request.messages:
                mid = str(len(self.messages) + 1)
                self.messages.append(
                    Received(request.topic, bytes(m.data), m.ordering_key, dict(m.attributes), mid)
                )
                ids.append(mid)
        return PublishResponse(message_ids=ids)

    def _get_topic(self, request: Any, context: grpc.ServicerContext) -> Topic:
        if request.topic not in self.topics:
            context.abort(grpc.StatusCode.NOT_FOUND, "topic not found")
        return Topic(name=request.topic)

    def start(self) -> str:
        from google.pubsub_v1.types import GetTopicRequest

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Publish": grpc.unary_unary_rpc_method_handler(
                    self._publish,
                    request_deserializer=PublishRequest.deserialize,
                    response_serializer=PublishResponse.serialize,
                ),
                "GetTopic": grpc.unary_unary_rpc_method_handler(
                    self._get_topic,
                    request_deserializer=GetTopicRequest.deserialize,
                    response_serializer=Topic.serialize,
                ),
            },
        )
        server.add_generic_rpc_handlers((handler,))
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(0).wait()
