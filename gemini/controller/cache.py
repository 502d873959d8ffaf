"""The controller's local cache of `ScalingPolicy` objects.

Owns: the raw object as last seen from the API server, its parse result (a `ScalingPolicy` or a
`SpecError`), and the `PolicyState` the controller carries between ticks (restored once from
`status.state`, then kept in memory). Thread-safe. Imports no Kubernetes or network library.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from gemini.errors import SpecError
from gemini.policy.spec import ScalingPolicy, parse_policy
from gemini.policy.state import PolicyState


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached policy object."""

    key: str  # "namespace/name"
    namespace: str
    name: str
    generation: int | None
    resource_version: str | None
    raw: Mapping[str, Any]
    # The parse of `raw`, kept across status-only changes: its `status` and
    # `metadata.resourceVersion` may be older than `raw`'s; read those from `raw`.
    policy: ScalingPolicy | None
    error: SpecError | None
    state: PolicyState
    own_state: bool = False  # True once this process evaluated it (state newer than status)

    @property
    def status(self) -> Mapping[str, Any]:
        status = self.raw.get("status")
        return status if isinstance(status, Mapping) else {}

    @property
    def interval_seconds(self) -> int:
        return self.policy.spec.interval_seconds if self.policy is not None else 0


Listener = Callable[[str, Entry | None, Entry | None], None]  # key, old, new


def _meta(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = raw.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def key_of(raw: Mapping[str, Any]) -> str:
    meta = _meta(raw)
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}"


# What a status write changes in metadata. A kept parse carries them stale (see `Entry.policy`).
_VOLATILE_META = frozenset({"resourceVersion", "managedFields"})


def _parsed_alike(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether `parse_policy` would see the same document in both (status aside)."""
    if old.get("spec") != new.get("spec"):
        return False
    if {k: v for k, v in old.items() if k not in ("status", "metadata")} != {
        k: v for k, v in new.items() if k not in ("status", "metadata")
    }:
        return False
    om, nm = _meta(old), _meta(new)
    return {k: v for k, v in om.items() if k not in _VOLATILE_META} == {
        k: v for k, v in nm.items() if k not in _VOLATILE_META
    }


def build_entry(raw: Mapping[str, Any], previous: Entry | None) -> Entry:
    """Parse `raw`. The state is kept from `previous` when this process has been evaluating the
    policy (its own state is the newest); otherwise it is restored from `status.state`, which the
    acting leader keeps current (start, standby, failover)."""
    meta = _meta(raw)
    policy: ScalingPolicy | None = None
    error: SpecError | None = None
    if previous is not None and _parsed_alike(previous.raw, raw):
        # A status write (ours, most of the time) changed only what the parse does not keep:
        # no second validation of an unchanged spec.
        policy, error = previous.policy, previous.error
    else:
        try:
            policy = parse_policy(dict(raw))
        except SpecError as exc:
            error = exc
    if previous is not None and previous.own_state:
        state = previous.state
    else:
        status = raw.get("status")
        state = PolicyState.from_status(
            status.get("state") if isinstance(status, Mapping) else None
        )
    generation = meta.get("generation")
    return Entry(
        key=key_of(raw),
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name") or ""),
        generation=int(generation) if isinstance(generation, int) else None,
        resource_version=meta.get("resourceVersion"),
        raw=raw,
        policy=policy,
        error=error,
        state=state,
        own_state=previous is not None and previous.own_state,
    )


class PolicyCache:
    """Policies by key. Listeners are called (outside the lock) after every change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _notify(self, key: str, old: Entry | None, new: Entry | None) -> None:
        for listener in self._listeners:
            listener(key, old, new)

    def get(self, key: str) -> Entry | None:
        with self._lock:
            return self._entries.get(key)

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def upsert(self, raw: Mapping[str, Any]) -> Entry:
        key = key_of(raw)
        with self._lock:
            old = self._entries.get(key)
            if old is not None and old.raw.get("metadata", {}).get("uid") != _meta(raw).get("uid"):
                old_for_state = None  # deleted and re-created under the same name
            else:
                old_for_state = old
            if (
                old is not None
                and old_for_state is not None
                and old.resource_version == _meta(raw).get("resourceVersion")
            ):
                return old
            new = build_entry(raw, old_for_state)
            self._entries[key] = new
        self._notify(key, old, new)
        return new

    def delete(self, key: str) -> Entry | None:
        with self._lock:
            old = self._entries.pop(key, None)
        if old is not None:
            self._notify(key, old, None)
        return old

    def disown_all(self) -> None:
        """Forget that our states are newest (we stopped leading): the next leader's status wins,
        and on regaining the lease each state is restored from status again."""
        with self._lock:
            for key, entry in self._entries.items():
                if entry.own_state:
                    status = entry.raw.get("status")
                    restored = PolicyState.from_status(
                        status.get("state") if isinstance(status, Mapping) else None
                    )
                    self._entries[key] = replace(entry, state=restored, own_state=False)

    def replace_all(self, raws: list[Mapping[str, Any]], namespace: str | None = None) -> None:
        """A relist of one scope (a namespace, or all when None): upsert everything listed and
        delete what is gone from that scope."""
        seen = set()
        for raw in raws:
            seen.add(self.upsert(raw).key)
        for entry in self.entries():
            if entry.key not in seen and (namespace is None or entry.namespace == namespace):
                self.delete(entry.key)

    def set_state(self, key: str, state: PolicyState, raw: Mapping[str, Any] | None = None) -> None:
        """Keep the state from a tick (and, when given, the object our status patch returned)."""
        with self._lock:
            old = self._entries.get(key)
            if old is None:
                return
            new = replace(old, state=state, own_state=True)
            if raw is not None and _meta(raw).get("generation") == old.generation:
                new = replace(new, raw=raw, resource_version=_meta(raw).get("resourceVersion"))
            self._entries[key] = new
