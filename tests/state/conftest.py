"""The state stores under test, each as a `Store`: the store itself, how many
local subscribers a ticket's channel has as its server sees it, and a second
"node" on the same state.

`memory` is MemoryState. `redis` is RedisState on the machine's Redis
(tests.redisdb: started if down, never skipped), under a key prefix of its own
that is deleted afterwards; its second node is another RedisState (another
pool, another Pub/Sub connection) on the same prefix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from authnet.state import StateStore
from authnet.state.memory import MemoryState
from authnet.state.redis import RedisState
from tests.redisdb import delete_prefix, ensure_redis, unique_prefix


@dataclass
class Store:
    name: str
    state: StateStore
    # How many subscribers the ticket's channel has, as the store sees it.
    listeners: Callable[[bytes], Awaitable[int]]
    # Another node on the same shared state (for MemoryState: the same object).
    other_node: StateStore


@pytest.fixture(scope="session")
def redis_url() -> str:
    return ensure_redis()


@pytest_asyncio.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    prefix = unique_prefix("state")
    yield prefix
    delete_prefix(redis_url, prefix)


@pytest_asyncio.fixture
async def redis_store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisState]:
    store = RedisState.from_url(redis_url, prefix=redis_prefix)
    yield store
    await store.close()


@pytest_asyncio.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Store]:
    if request.param == "memory":
        memory = MemoryState()

        async def memory_listeners(th: bytes) -> int:
            return len(memory._subs.get(th, ()))

        yield Store("memory", memory, memory_listeners, memory)
        await memory.close()
        return
    prefix = unique_prefix("conformance")
    node_a = RedisState.from_url(redis_url, prefix=prefix)
    node_b = RedisState.from_url(redis_url, prefix=prefix)
    admin = aioredis.Redis.from_url(redis_url)

    async def redis_listeners(th: bytes) -> int:
        # What Redis itself counts, not what the node believes.
        channel = prefix.encode() + b"e:" + th
        counts = await admin.pubsub_numsub(channel)
        return int(counts[0][1])

    try:
        yield Store("redis", node_a, redis_listeners, node_b)
    finally:
        await node_a.close()
        await node_b.close()
        await admin.aclose()
        delete_prefix(redis_url, prefix)
