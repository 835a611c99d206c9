"""The shared state a test cluster's nodes use: Redis and PostgreSQL (the
real servers at 127.0.0.1, started if they are down; a key prefix and a
database of this test's own, removed afterwards), or, to compare, one
MemoryState object handed to every node and the embedded SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from authnet.state.memory import MemoryState
from tests.pgdb import postgres_database
from tests.redisdb import delete_prefix, ensure_redis, unique_prefix


@asynccontextmanager
async def cluster_kwargs(kind: str) -> AsyncIterator[dict[str, Any]]:
    if kind == "memory":
        state = MemoryState()
        yield {"state": state}
        await state.close()
        return
    url = ensure_redis()
    prefix = unique_prefix("cluster")
    try:
        with postgres_database("authnet_cluster") as database_url:
            yield {"state_url": url, "state_prefix": prefix, "database_url": database_url}
    finally:
        delete_prefix(url, prefix)
