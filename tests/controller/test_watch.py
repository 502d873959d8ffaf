"""List+watch into the cache through the real client: create/update/delete within seconds, 410
relist, dropped watches, API errors with backoff, bookmarks, namespace scoping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from gemini.controller.cache import PolicyCache
from gemini.controller.watch import Backoff, PolicyWatcher
from tests.controller.conftest import SP, eventually, policy
from tests.fakes.kube import KubeServer


def fast_backoff() -> Backoff:
    return Backoff(base=0.02, cap=0.1)


@pytest.fixture
def watched(kube: KubeServer, api: client.ApiClient) -> Iterator[tuple[PolicyWatcher, PolicyCache]]:
    cache = PolicyCache()
    w = PolicyWatcher(
        client.CustomObjectsApi(api), cache, watch_timeout_seconds=2, backoff=fast_backoff
    )
    yield w, cache
    w.stop()


def keys(cache: PolicyCache) -> set[str]:
    return {e.key for e in cache.entries()}


def test_initial_list_fills_cache_and_sets_synced(kube: KubeServer, watched: Any) -> None:
    w, cache = watched
    kube.put_object(policy("a"))
    kube.put_object(policy("b", namespace="team"))
    w.start()
    assert w.synced.wait(5)
    assert keys(cache) == {"default/a", "team/b"}
    assert cache.get("default/a").policy is not None  # type: ignore[union-attr]


def test_create_update_delete_reach_cache_within_seconds(kube: KubeServer, watched: Any) -> None:
    w, cache = watched
    w.start()
    assert w.synced.wait(5)
    kube.put_object(policy("a", max_replicas=5))
    eventually(lambda: cache.get("default/a"))
    edited = policy("a", max_replicas=7)
    kube.put_object(edited)
    eventually(lambda: cache.get("default/a").policy.spec.max_replicas == 7)  # type: ignore[union-attr]
    assert cache.get("default/a").generation == 2  # type: ignore[union-attr]
    kube.delete_object(*SP, "a")
    eventually(lambda: cache.get("default/a") is None)


def test_invalid_policy_is_cached_with_its_error(kube: KubeServer, watched: Any) -> None:
    w, cache = watched
    bad = policy("bad", min_replicas=9, max_replicas=3)
    kube.put_object(bad)
    w.start()
    assert w.synced.wait(5)
    entry = cache.get("default/bad")
    assert entry is not None and entry.policy is None and entry.error is not None
    assert any(path == "spec.minReplicas" for path, _ in entry.error.problems)


def test_410_gone_relists_and_catches_up(kube: KubeServer, watched: Any) -> None:
    w, cache = watched
    kube.put_object(policy("a"))
    w.start()
    assert w.synced.wait(5)
    lists = w.lists
    # Drop the stream, forget history, and change things while nobody watches: the resume
    # from the old resourceVersion gets 410 and the watcher must relist.
    kube.fail_next("/apis/autoscaling.gemini.dev/v1alpha1/scalingpolicies", 500, count=2)
    kube.drop_watches()
    kube.delete_object(*SP, "a")
    kube.put_object(policy("b"))
    kube.compact()
    eventually(lambda: keys(cache) == {"default/b"})
    assert w.lists > lists


def test_dropped_watch_resumes_without_relist(kube: KubeServer, watched: Any) -> None:
    w, cache = watched
    w.start()
    assert w.synced.wait(5)
    lists = w.lists
    kube.drop_watches()
    kube.put_object(policy("late"))
    eventually(lambda: "default/late" in keys(cache))
    assert w.lists == lists  # resumed from its resourceVersion


def test_list_errors_back_off_and_recover(kube: KubeServer, watched: Any) -> None:
    w, cache = watched
    kube.put_object(policy("a"))
    kube.fail_next("/apis/autoscaling.gemini.dev/v1alpha1/scalingpolicies", 503, count=3)
    w.start()
    assert w.synced.wait(5)
    assert keys(cache) == {"default/a"}


def test_namespace_scope_sees_only_its_namespaces(kube: KubeServer, api: client.ApiClient) -> None:
    cache = PolicyCache()
    w = PolicyWatcher(client.CustomObjectsApi(api), cache, ["team"], watch_timeout_seconds=2)
    kube.put_object(policy("a"))
    kube.put_object(policy("b", namespace="team"))
    w.start()
    try:
        assert w.synced.wait(5)
        kube.put_object(policy("c", namespace="team"))
        kube.put_object(policy("d", namespace="other"))
        eventually(lambda: "team/c" in keys(cache))
        assert keys(cache) == {"team/b", "team/c"}
    finally:
        w.stop()


def test_watch_asks_for_bookmarks_and_resumes_from_resource_version(
    kube: KubeServer, watched: Any
) -> None:
    w, _cache = watched
    w.start()
    assert w.synced.wait(5)
    eventually(lambda: kube.requests("GET", "/apis/autoscaling.gemini.dev"))
    watches = eventually(
        lambda: [
            r for r in kube.requests("GET", "/apis/autoscaling.gemini.dev") if "watch" in r.query
        ]
    )
    assert "allowWatchBookmarks" in watches[0].query
    assert "resourceVersion" in watches[0].query


@pytest.mark.parametrize(
    ("base", "cap", "n"),
    [pytest.param(0.5, 30.0, 10, id="grows-to-cap"), pytest.param(1.0, 2.0, 5, id="small-cap")],
)
def test_backoff_is_jittered_and_capped(base: float, cap: float, n: int) -> None:
    b = Backoff(base=base, cap=cap)
    delays = [b.next() for _ in range(n)]
    assert all(0 < d <= cap for d in delays)
    assert len(set(delays)) > 1
    b.reset()
    assert b.next() <= base


def test_stop_interrupts_an_idle_watch_stream() -> None:
    """Nothing happens on the stream (no event, no bookmark for minutes): stop still ends the
    watch at once instead of after the server's timeout."""
    import time

    from tests.controller.conftest import load_crd

    server = KubeServer(bookmark_interval=600).start()
    try:
        server.register_crd(load_crd())
        server.put_object(policy("a"))
        w = PolicyWatcher(
            client.CustomObjectsApi(server.api_client()), PolicyCache(), watch_timeout_seconds=60
        )
        w.start()
        assert w.synced.wait(5)
        eventually(lambda: w.watches >= 1)
        time.sleep(0.3)  # the stream is open and idle
        started = time.monotonic()
        w.stop(timeout=5)
        assert not w.running
        assert time.monotonic() - started < 2
    finally:
        server.stop()
