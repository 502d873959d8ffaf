"""`EventRecorder` with the real client against the local API server: repeats bump one Event;
a new recorder (a restart, a failover) or a forgotten key never loses an occurrence nor turns an
existing Event's count back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kubernetes import client

from gemini.clock import ManualClock
from gemini.controller.events import EventRecorder
from tests.controller.harness import T0
from tests.fakes.kube import KubeServer


def _counts(kube: KubeServer) -> list[tuple[Any, Any]]:
    found = [e for e in kube.list_objects("v1", "Event", "default") if e["reason"] == "Failed"]
    return sorted((e["lastTimestamp"], e["count"]) for e in found)


def test_a_new_recorder_never_loses_an_occurrence_or_turns_a_count_back(
    kube: KubeServer, api: client.ApiClient
) -> None:
    clock = ManualClock(T0)

    def emit(recorder: EventRecorder, message: str = "no quota") -> None:
        recorder.emit("default", "web", "uid-1", "Warning", "Failed", message)
        clock.advance(timedelta(seconds=20))

    first = EventRecorder(client.CoreV1Api(api), clock)
    for _ in range(3):
        emit(first)
    assert _counts(kube) == [("2026-01-01T12:00:40Z", 3)]
    # The controller restarts (or the standby takes over) with an empty memory.
    second = EventRecorder(client.CoreV1Api(api), clock)
    emit(second)
    emit(second)
    assert _counts(kube) == [("2026-01-01T12:00:40Z", 3), ("2026-01-01T12:01:20Z", 2)]


def test_a_key_forgotten_by_a_full_memory_is_recorded_again(
    kube: KubeServer, api: client.ApiClient
) -> None:
    clock = ManualClock(T0)
    recorder = EventRecorder(client.CoreV1Api(api), clock, max_keys=1)
    for message in ("a", "b", "a"):  # "b" pushes "a" out of the memory
        recorder.emit("default", "web", "uid-1", "Warning", "Failed", message)
        clock.advance(timedelta(seconds=20))
    assert [c for _, c in _counts(kube)] == [1, 1, 1]
