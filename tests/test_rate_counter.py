"""The API's per-token minute counter: one Redis round trip per request, the same count with any cache."""

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from devpilot.api import count_in_window

REDIS = "redis://127.0.0.1:6379/6"


@pytest.fixture(params=["locmem", "redis"])
def cache_backend(request, settings):
    if request.param == "redis":
        import redis

        try:
            redis.Redis.from_url(REDIS).flushdb()
        except redis.ConnectionError:
            pytest.skip(f"no Redis at {REDIS}")
        settings.CACHES = {"default": {"BACKEND": "devpilot.cache.RedisCache", "LOCATION": REDIS}}  # as deployed
    else:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    caches["default"].clear()
    yield caches["default"]
    caches["default"].clear()


def test_the_counter_counts_and_expires(cache_backend):
    assert [count_in_window("api-rate:t:1", 120) for _ in range(3)] == [1, 2, 3]
    assert count_in_window("api-rate:t:2", 120) == 1  # the next minute starts again
    if isinstance(cache_backend, RedisCache):
        client = cache_backend._cache.get_client(None)
        ttl = client.ttl(cache_backend.make_and_validate_key("api-rate:t:1"))
        assert 0 < ttl <= 120  # the minute's key does not outlive its window by much


def test_one_round_trip_to_redis_per_count(cache_backend, monkeypatch):
    if not isinstance(cache_backend, RedisCache):
        pytest.skip("round trips are a Redis matter")
    import redis

    executed = []
    real = redis.client.Pipeline.execute
    monkeypatch.setattr(redis.client.Pipeline, "execute", lambda self, *a, **k: executed.append(1) or real(self, *a, **k))
    sent = []
    monkeypatch.setattr(redis.Redis, "execute_command", lambda self, *a, **k: sent.append(a[0]))
    count_in_window("api-rate:t:3", 120)
    assert executed == [1] and sent == []  # the pipeline's one execute, no command on its own


def test_the_redis_cache_keeps_one_client_per_pool(cache_backend):
    """Django builds a client per cache call; Devpilot's backend reuses it, and the cache still works."""
    if not isinstance(cache_backend, RedisCache):
        pytest.skip("clients are a Redis matter")
    assert cache_backend._cache.get_client(None, write=True) is cache_backend._cache.get_client(None, write=True)
    cache_backend.set("greeting", {"hello": "world"}, timeout=30)
    assert cache_backend.get("greeting") == {"hello": "world"}
    assert cache_backend.add("counter", 0) and cache_backend.incr("counter") == 1
