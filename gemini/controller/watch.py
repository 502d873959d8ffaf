"""List+watch of `ScalingPolicy` objects with the official client, into the `PolicyCache`.

Owns the reflector loop, one thread per scope (all namespaces, or each listed namespace):
list (a consistent snapshot and its resourceVersion) -> `kubernetes.watch.Watch` from that
resourceVersion with `allowWatchBookmarks` -> resume from the last seen resourceVersion when the
stream ends -> relist on 410 Gone -> jittered exponential backoff on any other error. `synced` is
set once every scope has listed once. Imports the kubernetes client; no metric source or scaler.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from typing import Any

from gemini.controller.cache import PolicyCache, key_of
from gemini.policy.spec import API_GROUP

log = logging.getLogger(__name__)

VERSION = "v1alpha1"
PLURAL = "scalingpolicies"


class Backoff:
    """Full-jitter exponential backoff: uniform in [base/2, min(cap, base * 2**n)]."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None):
        self.base = base
        self.cap = cap
        self._n = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        high = min(self.cap, self.base * (2**self._n))
        self._n = min(self._n + 1, 30)
        return self._rng.uniform(min(self.base / 2, high), high)

    def reset(self) -> None:
        self._n = 0


class PolicyWatcher:
    def __init__(
        self,
        custom_api: Any,
        cache: PolicyCache,
        namespaces: list[str] | None = None,
        *,
        watch_timeout_seconds: int = 300,
        request_timeout: float = 30.0,
        backoff: Callable[[], Backoff] = Backoff,
        on_restart: Callable[[str], None] | None = None,
    ) -> None:
        self._api = custom_api
        self._cache = cache
        self._scopes: list[str | None] = list(namespaces) if namespaces else [None]
        self._watch_timeout = watch_timeout_seconds
        self._request_timeout = request_timeout
        self._backoff = backoff
        self._on_restart = on_restart
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._synced_scopes: set[str | None] = set()
        self._lock = threading.Lock()
        self._active: set[Any] = set()  # the Watch objects streaming now
        self.synced = threading.Event()
        self.lists = 0
        self.watches = 0

    def start(self) -> None:
        for scope in self._scopes:
            t = threading.Thread(
                target=self._run, args=(scope,), name=f"watch-{scope or 'all'}", daemon=True
            )
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float | None = None) -> None:
        """Stop watching: an idle watch stream is interrupted (not left waiting for its next
        event or its server timeout); with `timeout`, wait that long for the threads to end."""
        self._stop.set()
        with self._lock:
            active = list(self._active)
        for w in active:
            try:
                w.stop()  # the pinned client shuts the socket down: a blocked read returns
            except Exception as exc:  # best effort: the stream still ends on its own
                log.debug("interrupting a watch stream: %s", exc)
        if timeout is not None:
            for t in self._threads:
                t.join(timeout)

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _restart(self, cause: str) -> None:
        if self._on_restart is not None:
            self._on_restart(cause)

    # -- API calls -----------------------------------------------------------------------------

    def _list_func(self, scope: str | None) -> Callable[..., Any]:
        if scope is None:
            return self._api.list_cluster_custom_object  # type: ignore[no-any-return]
        return self._api.list_namespaced_custom_object  # type: ignore[no-any-return]

    def _args(self, scope: str | None) -> tuple[str, ...]:
        if scope is None:
            return (API_GROUP, VERSION, PLURAL)
        return (API_GROUP, VERSION, scope, PLURAL)

    def list_once(self, scope: str | None) -> str:
        """List the scope into the cache; return the list's resourceVersion."""
        out = self._list_func(scope)(*self._args(scope), _request_timeout=self._request_timeout)
        self.lists += 1
        # Items in a list carry no apiVersion/kind; the policy parser wants them.
        items: list[Mapping[str, Any]] = [
            {"apiVersion": f"{API_GROUP}/{VERSION}", "kind": "ScalingPolicy", **i}
            for i in out.get("items", [])
            if isinstance(i, Mapping)
        ]
        self._cache.replace_all(items, namespace=scope)
        with self._lock:
            self._synced_scopes.add(scope)
            if len(self._synced_scopes) == len(self._scopes):
                self.synced.set()
        return str(out.get("metadata", {}).get("resourceVersion") or "")

    def _watch(self, scope: str | None, resource_version: str) -> str:
        """One watch request; returns the resourceVersion to resume from."""
        from kubernetes import watch

        w = watch.Watch()  # type: ignore[no-untyped-call]
        self.watches += 1
        rv = resource_version
        with self._lock:
            self._active.add(w)
        if self._stop.is_set():  # `stop` ran before we were listed: it could not interrupt us
            with self._lock:
                self._active.discard(w)
            return rv
        try:
            for event in w.stream(  # type: ignore[no-untyped-call]
                self._list_func(scope),
                *self._args(scope),
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=self._watch_timeout,
                _request_timeout=self._watch_timeout + self._request_timeout,
            ):
                if self._stop.is_set():
                    w.stop()  # type: ignore[no-untyped-call]
                    break
                kind = event.get("type")
                raw = event.get("raw_object")
                if not isinstance(raw, Mapping):
                    continue
                meta = raw.get("metadata") or {}
                rv = str(meta.get("resourceVersion") or rv)
                if kind in ("ADDED", "MODIFIED"):
                    self._cache.upsert(raw)
                elif kind == "DELETED":
                    self._cache.delete(key_of(raw))
                # BOOKMARK: only the resourceVersion moves.
        except Exception:
            if self._stop.is_set():
                return rv  # the stream was interrupted by `stop`
            raise
        finally:
            with self._lock:
                self._active.discard(w)
        return rv

    # -- the loop ------------------------------------------------------------------------------

    def _run(self, scope: str | None) -> None:
        from kubernetes.client.exceptions import ApiException

        backoff = self._backoff()
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    rv = self.list_once(scope)
                    backoff.reset()
                rv = self._watch(scope, rv)
                backoff.reset()
            except ApiException as exc:
                if exc.status == 410:
                    log.info("watch %s: 410 Gone, relisting", scope or "all namespaces")
                    self._restart("gone")
                    rv = None
                    continue
                log.warning("watch %s: API error %s %s", scope or "all", exc.status, exc.reason)
                self._restart("api_error")
                self._stop.wait(backoff.next())
            except Exception as exc:  # connection reset, timeouts, bad JSON
                log.warning("watch %s: %s", scope or "all", exc)
                self._restart("error")
                self._stop.wait(backoff.next())
