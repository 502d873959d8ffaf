"""PubSubSink: the real google-cloud-pubsub publisher against an in-process Publisher server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from gemini.policy.decision import Decision
from gemini.store.pubsub_sink import PubSubSink
from tests.fakes.pubsub import FakePublisher
from tests.store.factory import decision

TOPIC = "projects/demo-project/topics/gemini-decisions"


@pytest.fixture
def server() -> Iterator[tuple[FakePublisher, str]]:
    fake = FakePublisher(topics={TOPIC})
    endpoint = fake.start()
    yield fake, endpoint
    fake.stop()


def test_one_message_per_applied_decision_ordered_per_policy(
    server: tuple[FakePublisher, str],
) -> None:
    fake, endpoint = server
    sink = PubSubSink(TOPIC, endpoint=endpoint)
    sent: list[Decision] = []
    for i in range(30):
        d = decision(f"ns/p{i % 3}", float(i), desired=i, applied=i % 5 != 0)
        sink.record(d)
        sent.append(d)
    assert sink.flush(10)
    sink.close()
    applied = [d for d in sent if d.applied]
    assert len(fake.messages) == len(applied) == sink.published
    for key in ["ns/p0", "ns/p1", "ns/p2"]:
        got = [m for m in fake.messages if m.ordering_key == key]
        assert [json.loads(m.data)["desiredReplicas"] for m in got] == [
            d.desired for d in applied if d.policy == key
        ]
    first = next(m for m in fake.messages if m.ordering_key == applied[0].policy)
    assert Decision.from_dict(json.loads(first.data)) == applied[0]
    assert first.attributes == {
        "policy": applied[0].policy,
        "mode": "Active",
        "target": "apps/v1/Deployment/web",
        "outcome": "Scaled",
    }
    assert {m.topic for m in fake.messages} == {TOPIC}


def test_emulator_host_variable_is_honoured(
    server: tuple[FakePublisher, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, endpoint = server
    monkeypatch.delenv("GEMINI_PUBSUB_ENDPOINT", raising=False)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", endpoint)
    sink = PubSubSink(TOPIC, only_applied=False)
    sink.record(decision(applied=False))
    assert sink.flush(10)
    sink.close()
    assert len(fake.messages) == 1


def test_failed_publish_is_counted_and_the_key_resumes(server: tuple[FakePublisher, str]) -> None:
    fake, endpoint = server
    fake.topics.clear()  # the topic does not exist yet: NOT_FOUND, not retried
    sink = PubSubSink(TOPIC, endpoint=endpoint)
    sink.record(decision(at=1.0))
    assert sink.flush(10)
    assert (sink.failed, sink.published) == (1, 0)
    assert sink.last_error is not None and "not found" in sink.last_error.lower()
    fake.topics.add(TOPIC)
    sink.record(decision(at=2.0))  # same ordering key: only publishes if it was resumed
    assert sink.flush(10)
    sink.close()
    assert (sink.failed, sink.published) == (1, 1), sink.last_error
    assert len(fake.messages) == 1


@pytest.mark.parametrize(
    "topic", ["gemini-decisions", "projects/p/topics/t", "projects/demo-project/subscriptions/x"]
)
def test_bad_topic_names_the_value(topic: str) -> None:
    with pytest.raises(ValueError, match=f"pubsub topic '{topic}'"):
        PubSubSink(topic, publisher=object())
